"""POST /api/v1/contacts/{id}/unsubscribe/: withdrawing consent through the API."""

import pytest

from crm.models import ConsentEntry, ConsentTopic, Suppression
from tests.factories import ConsentEntryFactory, ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber():
    contact = ContactFactory(email="ada@example.com")
    for key in ("newsletter", "offers"):
        ConsentEntryFactory(contact=contact, topic=ConsentTopic.objects.get(key=key))
    return contact


def url(contact) -> str:
    return f"/api/v1/contacts/{contact.pk}/unsubscribe/"


def granted(body: dict) -> dict[str, bool]:
    return {row["topic"]: row["granted"] for row in body["topics"]}


def test_one_topic_is_withdrawn_with_method_api_and_the_key_as_source(
    server_client, server_key, subscriber
):
    response = server_client.post(url(subscriber), {"topic": "newsletter"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["contact_id"] == subscriber.pk
    assert granted(body)["newsletter"] is False and granted(body)["offers"] is True
    assert body["suppressions"] == []
    entry = ConsentEntry.objects.get(contact=subscriber, is_granted=False)
    assert (entry.method, entry.source) == ("api", f"API key {server_key.api_key.prefix}")


def test_all_withdraws_every_topic_and_suppresses_and_repeats_change_nothing(
    server_client, subscriber
):
    first = server_client.post(url(subscriber), {"all": True}, format="json")
    second = server_client.post(url(subscriber), {"all": True}, format="json")

    assert first.status_code == second.status_code == 200
    assert not any(granted(second.json()).values())
    assert second.json()["suppressions"] == [Suppression.Reason.UNSUBSCRIBED]
    withdrawals = ConsentEntry.objects.filter(contact=subscriber, is_granted=False)
    assert withdrawals.count() == ConsentTopic.objects.count()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "no-such-topic"}, "topic"),
        ({}, "non_field_errors"),
        ({"topic": "newsletter", "all": True}, "non_field_errors"),
        ({"all": False}, "all"),
        ({"all": True, "reason": "x"}, "reason"),
    ],
    ids=["unknown-topic", "neither", "both", "all-false", "unknown-field"],
)
def test_unclear_requests_are_refused_with_400_and_change_nothing(
    server_client, subscriber, body, field
):
    response = server_client.post(url(subscriber), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not ConsentEntry.objects.filter(is_granted=False).exists()


def test_browser_keys_get_403(browser_client, subscriber):
    response = browser_client.post(url(subscriber), {"all": True}, format="json")

    assert response.status_code == 403
    assert not ConsentEntry.objects.filter(is_granted=False).exists()


def test_unknown_contact_is_404(server_client):
    response = server_client.post("/api/v1/contacts/999999/unsubscribe/", {"all": True})

    assert response.status_code == 404
