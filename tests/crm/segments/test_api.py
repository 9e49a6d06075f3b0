"""GET /api/v1/segments/ and /api/v1/segments/{key}/members/ (server keys, cursor pages)."""

import pytest
from django.urls import reverse

from crm.models import ApiKey
from crm.services import api_key_create
from tests.crm.api.conftest import client_for
from tests.factories import ContactFactory, SegmentFactory, SegmentMembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.crm.segments.api_urls")]


@pytest.fixture
def server_client():
    return client_for(api_key_create(name="Shop", kind=ApiKey.Kind.SERVER).key)


def test_segments_are_listed_with_their_counts(server_client):
    SegmentFactory(key="leads", name="Leads")

    response = server_client.get("/api/v1/segments/")

    assert response.status_code == 200
    [segment] = response.json()["results"]
    assert segment["key"] == "leads"
    assert segment["member_count"] == 0
    assert segment["definition"]["match"] == "all"


def test_members_are_the_current_ones_in_cursor_pages(server_client):
    segment = SegmentFactory(key="leads")
    members = [SegmentMembershipFactory(segment=segment).contact for _ in range(3)]
    SegmentMembershipFactory(segment=segment, exited_at="2026-01-01T00:00:00Z")
    ContactFactory()

    first = server_client.get("/api/v1/segments/leads/members/", {"page_size": 2}).json()
    second = server_client.get(first["next"]).json()

    emails = [contact["email"] for contact in first["results"] + second["results"]]
    assert emails == [contact.email for contact in reversed(members)]
    assert second["next"] is None


def test_an_unknown_segment_is_a_404(server_client):
    response = server_client.get("/api/v1/segments/ghost/members/")

    assert response.status_code == 404


def test_browser_keys_cannot_read_segments():
    key = api_key_create(
        name="Site", kind=ApiKey.Kind.BROWSER, allowed_origins=["https://x.example"]
    )
    client = client_for(key.key, HTTP_ORIGIN="https://x.example")

    assert client.get("/api/v1/segments/").status_code == 403


@pytest.mark.urls("config.urls")
def test_the_endpoints_are_mounted_under_api_v1():
    assert reverse("crm_api:segment-list") == "/api/v1/segments/"
    assert reverse("crm_api:segment-members", args=["leads"]) == "/api/v1/segments/leads/members/"
