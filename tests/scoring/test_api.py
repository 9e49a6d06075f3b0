"""/api/v1/handoffs/: list, filter and work handoffs with a server key."""

import pytest
from rest_framework.test import APIClient

from crm.services.api_keys import api_key_create
from tests.factories import HandoffFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.scoring.api_urls")]


@pytest.fixture
def api():
    client = APIClient()
    key = api_key_create(name="crm sync", kind="server").key
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_lists_open_handoffs_with_their_reasons(api):
    handoff = HandoffFactory()
    HandoffFactory(status="rejected", close_reason="No")

    response = api.get("/api/v1/handoffs/", {"is_open": "true"})

    assert response.status_code == 200
    [item] = response.json()["results"]
    assert (item["id"], item["rule"], item["status"]) == (handoff.pk, handoff.rule.key, "new")
    assert item["reasons"][0]["label"] == "+40 Pricing page viewed"


def test_claim_needs_a_user_and_recycle_a_reason(api, salesperson):
    handoff = HandoffFactory()
    url = f"/api/v1/handoffs/{handoff.pk}"

    no_user = api.post(f"{url}/claim/", {}, format="json")
    claimed = api.post(f"{url}/claim/", {"user": salesperson.pk}, format="json")
    no_reason = api.post(f"{url}/recycle/", {"reason": " "}, format="json")
    recycled = api.post(f"{url}/recycle/", {"reason": "Next year"}, format="json")

    assert no_user.status_code == 400
    assert (claimed.status_code, claimed.json()["owner"]) == (200, salesperson.pk)
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["fields"]
    assert (recycled.json()["status"], recycled.json()["close_reason"]) == ("recycled", "Next year")


def test_acting_on_a_closed_handoff_is_a_400(api):
    handoff = HandoffFactory(status="accepted")

    response = api.post(f"/api/v1/handoffs/{handoff.pk}/accept/", {}, format="json")

    assert response.status_code == 400
    assert "already accepted" in response.json()["message"] + str(response.json())


def test_needs_a_key(db):
    assert APIClient().get("/api/v1/handoffs/").status_code == 401


def test_the_api_refuses_to_work_someone_elses_lead(api, salesperson):
    owner = UserFactory(username="owner", groups=["Sales"])
    handoff = HandoffFactory(owner=owner)

    refused = api.post(
        f"/api/v1/handoffs/{handoff.pk}/accept/", {"user": salesperson.pk}, format="json"
    )

    assert refused.status_code == 400
    assert "only they can work it" in str(refused.json())
    handoff.refresh_from_db()
    assert (handoff.status, handoff.owner) == ("new", owner)
