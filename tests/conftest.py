"""Fixtures shared by every test: real database, inline django-q2, anymail's test backend."""

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
