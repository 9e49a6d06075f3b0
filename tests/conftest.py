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


@pytest.fixture(autouse=True)
def esp_processing_not_queued(monkeypatch):
    """No test starts with another's "a processing task is queued" mark (sequences.esp.inbox):
    the cache and the web process's last check outlive a test, and a test that mocks
    async_task never runs the task. Each webhook POST checks (no window), so a processing
    task, run inline by the sync cluster, never waits for a window's last pass."""
    from django.core.cache import cache

    from sequences.esp import inbox

    cache.delete(inbox.QUEUED_KEY)
    inbox.processing_forget_checks()
    monkeypatch.setattr(inbox, "QUEUE_CHECK_SECONDS", 0)


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
    _roles_granted_again()


#: The data migrations' functions that create the staff roles and grant them permissions.
ROLE_FUNCTIONS = {"create_roles", "grant", "grant_view", "add_permissions", "add_group"}
OUR_APPS = {"crm", "scoring", "sequences", "revenue", "predictions"}


def _roles_granted_again() -> None:
    """The staff roles, as the migrations grant them, after a flush removed them.

    pytest-django runs transactional tests last; each one's teardown flushes every table,
    so a later browser test's marketer would have no Marketing group. The role
    migrations are idempotent (get_or_create, add): they run again, in migration order,
    on the migrated state's models.
    """
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations.special import RunPython

    loader = MigrationLoader(connection)
    state_apps = loader.project_state().apps
    done = set()
    for leaf in sorted(loader.graph.leaf_nodes()):
        for node in loader.graph.forwards_plan(leaf):
            if node in done or node[0] not in OUR_APPS:
                continue
            done.add(node)
            for operation in loader.graph.nodes[node].operations:
                if isinstance(operation, RunPython) and operation.code.__name__ in ROLE_FUNCTIONS:
                    operation.code(state_apps, None)


@pytest.fixture(autouse=True)
def _default_rows_for_live_servers(request):
    """Browser tests run on live_server, a transactional test: give them the default rows too."""
    if "live_server" in request.fixturenames:
        request.getfixturevalue("default_rows")
