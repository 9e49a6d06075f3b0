"""Withdrawing is as easy as giving, through every channel (reliability §8 item 12).

Each channel must write a ledger withdrawal for every topic the person had granted
and, where it means "everything", an `unsubscribed` suppression; afterwards the send
gate must refuse a marketing email. Nextstep reads no inbound replies, so there is
no reply-unsubscribe channel to test. The admin offers both: a withdrawal entry per
topic, and the contacts action "Unsubscribe from all marketing".
"""

import datetime

import pytest
from django.core.cache import cache
from django.test import Client

from crm.links import preferences_token, unsubscribe_url
from crm.models import ApiKey, ConsentEntry, ConsentTopic, Suppression
from crm.selectors import suppressions_active_for
from crm.services import api_key_create
from sequences.gate import evaluate
from tests.crm.api.conftest import client_for
from tests.factories import ConsentEntryFactory, ContactFactory, UserFactory
from tests.sequences.conftest import build_sequence, clock, email_step  # noqa: F401

pytestmark = pytest.mark.django_db

GRANTED = ("newsletter", "offers")


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the cache, which outlives each test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def granted_contact(clock):  # noqa: F811
    contact = ContactFactory(email="ada@example.com")
    for key in GRANTED:
        ConsentEntryFactory(
            contact=contact,
            topic=ConsentTopic.objects.get(key=key),
            occurred_at=clock.now - datetime.timedelta(days=30),
        )
    return contact


def one_click(contact, settings) -> None:
    settings.UNSUBSCRIBE_SCOPE = "all"
    url = unsubscribe_url(contact, ConsentTopic.objects.get(key="newsletter"))
    path = url.split("://", 1)[1].split("/", 1)[1]
    # As a mailbox provider posts: no cookie, no CSRF token.
    response = Client(enforce_csrf_checks=True).post(f"/{path}", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200


def preference_centre(contact, settings) -> None:
    response = Client().post(
        f"/preferences/{preferences_token(contact)}/", {"unsubscribe_all": "on"}
    )
    assert response.status_code == 200


def admin(contact, settings) -> None:
    client = Client()
    client.force_login(UserFactory(username="admin", is_superuser=True))
    for key in GRANTED:
        response = client.post(
            "/admin/crm/consententry/add/",
            {
                "contact": contact.pk,
                "topic": ConsentTopic.objects.get(key=key).pk,
                "is_granted": "False",
                "lawful_basis": "consent",
                "source": "phone call",
            },
        )
        assert response.status_code == 302


def admin_unsubscribe_all(contact, settings) -> None:
    client = Client()
    client.force_login(UserFactory(username="marketer", groups=["Marketing"]))
    response = client.post(
        "/admin/crm/contact/",
        {"action": "unsubscribe_contacts_from_all", "_selected_action": [contact.pk]},
    )
    assert response.status_code == 302


def api(contact, settings) -> None:
    key = api_key_create(name="Shop backend", kind=ApiKey.Kind.SERVER)
    response = client_for(key.key).post(
        f"/api/v1/contacts/{contact.pk}/unsubscribe/", {"all": True}, format="json"
    )
    assert response.status_code == 200


CHANNELS = [
    pytest.param(one_click, ConsentEntry.Method.ONE_CLICK, True, id="one-click"),
    pytest.param(
        preference_centre, ConsentEntry.Method.PREFERENCE_CENTRE, True, id="preference-centre"
    ),
    pytest.param(admin, ConsentEntry.Method.ADMIN, False, id="admin-one-topic"),
    pytest.param(
        admin_unsubscribe_all, ConsentEntry.Method.ADMIN, True, id="admin-unsubscribe-all"
    ),
    pytest.param(api, ConsentEntry.Method.API, True, id="api"),
]


@pytest.mark.parametrize(("withdraw", "method", "suppresses"), CHANNELS)
def test_every_channel_withdraws_in_the_ledger_and_stops_marketing(
    granted_contact,
    clock,  # noqa: F811
    settings,
    withdraw,
    method,
    suppresses,
):
    sequence = build_sequence([email_step("hello")])
    assert evaluate(granted_contact, sequence, {"key": "hello", "config": {}}, clock.now).allowed

    withdraw(granted_contact, settings)

    for key in GRANTED:
        assert ConsentEntry.objects.filter(
            contact=granted_contact, topic__key=key, is_granted=False, method=method
        ).exists(), key
    unsubscribed = suppressions_active_for(email=granted_contact.email).filter(
        reason=Suppression.Reason.UNSUBSCRIBED
    )
    assert unsubscribed.exists() is suppresses
    decision = evaluate(granted_contact, sequence, {"key": "hello", "config": {}}, clock.now)
    assert not decision.allowed
