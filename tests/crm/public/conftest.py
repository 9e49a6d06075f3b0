"""Public-page fixtures: fresh rate-limit counters, a CSRF-enforcing client, sequences' helpers."""

import pytest
from django.core.cache import cache
from django.test import Client

from crm.models import ConsentTopic
from tests.factories import ConsentEntryFactory, ContactFactory
from tests.sequences.conftest import clock, consenting_contact, newsletter  # noqa: F401


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def strict_client():
    """No session, no cookies, and CSRF checks on, as a mailbox provider's POST arrives."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def subscriber(db):
    """A contact who consented to the newsletter."""
    contact = ContactFactory(email="ada@example.com", first_name="Ada")
    ConsentEntryFactory(contact=contact, topic=ConsentTopic.objects.get(key="newsletter"))
    return contact
