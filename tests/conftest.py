"""Fixtures shared by every test: real database, inline django-q2, anymail's test backend."""

import importlib

import pytest
from django.core import mail

from tests.factories import UserFactory

ROLES = ("Marketing", "Sales", "Customer success")


@pytest.fixture(autouse=True)
def anymail_test_backend(settings):
    """Use anymail's test backend: pytest-django forces locmem otherwise (stack.md, pitfall 1)."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    mail.outbox = []


@pytest.fixture
def superuser(db):
    return UserFactory(username="admin", is_superuser=True)


@pytest.fixture
def marketer(db):
    return UserFactory(username="marketer", groups=["Marketing"])


@pytest.fixture
def salesperson(db):
    return UserFactory(username="seller", groups=["Sales"])


@pytest.fixture
def success_manager(db):
    return UserFactory(username="success", groups=["Customer success"])


@pytest.fixture
def default_rows(transactional_db):
    """The stages and topics the data migration creates, for transactional tests.

    Another transactional test's teardown flushes every table, migration rows included;
    serialized_rollback cannot restore them (the consent ledger refuses updates).
    The migration's function is idempotent (get_or_create), so it simply runs again.
    """
    from django.apps import apps

    migration = importlib.import_module("crm.migrations.0002_default_stages_and_topics")
    migration.create_defaults(apps, None)


@pytest.fixture(autouse=True)
def _default_rows_for_live_servers(request):
    """Browser tests run on live_server, a transactional test: give them the default rows too."""
    if "live_server" in request.fixturenames:
        request.getfixturevalue("default_rows")
