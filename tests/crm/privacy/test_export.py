"""Exporting one contact's data, from the admin and the API."""

import json

import pytest
from django.urls import reverse

from crm.models import ConsentTopic
from crm.services import api_key_create, contact_export
from tests.crm.api.conftest import client_for
from tests.factories import (
    ActivityFactory,
    ConsentEntryFactory,
    ContactFactory,
    DealFactory,
    ScoreChangeFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(db):
    contact = ContactFactory(email="ada@example.com", first_name="Ada")
    ConsentEntryFactory(contact=contact, topic=ConsentTopic.objects.get(key="newsletter"))
    ActivityFactory(contact=contact, kind="page_viewed")
    DealFactory(contact=contact, name="Ada's deal")
    ScoreChangeFactory(contact=contact)
    return contact


def test_export_holds_profile_consent_activities_deals_messages_and_scores(person):
    data = contact_export(contact=person)

    assert data["profile"]["email"] == "ada@example.com"
    assert data["consent_ledger"][0]["topic__key"] == "newsletter"
    assert "page_viewed" in [a["kind"] for a in data["activities"]]
    assert data["deals"][0]["name"] == "Ada's deal"
    assert set(data["sequences"]) == {"enrollments", "enrollment_events", "messages", "esp_events"}
    assert len(data["scoring"]["score_changes"]) == 1
    json.dumps(data)  # plain JSON types only


def test_api_export_needs_a_server_key(person):
    server = api_key_create(name="Backend", kind="server")
    browser = api_key_create(name="Site", kind="browser", allowed_origins=["https://x.example"])
    url = f"/api/v1/contacts/{person.pk}/export/"

    ok = client_for(server.key).get(url)
    refused = client_for(browser.key, HTTP_ORIGIN="https://x.example").get(url)

    assert ok.status_code == 200 and ok.json()["profile"]["email"] == "ada@example.com"
    assert refused.status_code == 403
    assert client_for(server.key).get("/api/v1/contacts/999999/export/").status_code == 404


def test_admin_action_downloads_json(client, superuser, person):
    client.force_login(superuser)

    response = client.post(
        reverse("admin:crm_contact_changelist"),
        {"action": "export_contact_data", "_selected_action": [person.pk]},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)[0]["profile"]["first_name"] == "Ada"
