import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Activity, ApiKey
from crm.services import api_key_create, api_key_revoke
from crm.services.api_keys import api_key_hash, api_key_mark_used
from tests.crm.api.conftest import SITE, client_for

EVENTS = "/api/v1/events/"
EVENT = {"type": "page_viewed", "anonymous_id": "visitor-1"}


@pytest.mark.django_db
def test_a_key_is_stored_only_as_its_hash(server_key):
    api_key = server_key.api_key

    assert server_key.key.startswith("ns_live_")
    assert len(server_key.key) > 40
    assert api_key.key_hash == api_key_hash(server_key.key)
    assert server_key.key not in str(ApiKey.objects.filter(pk=api_key.pk).values().get())


@pytest.mark.django_db
def test_no_key_gets_401_in_the_error_shape():
    response = APIClient().post(EVENTS, EVENT, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_an_unknown_key_gets_401():
    response = client_for("ns_live_made-up").post(EVENTS, EVENT, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "key_unknown"


@pytest.mark.django_db
def test_a_revoked_key_gets_401(server_key, server_client):
    api_key_revoke(api_key=server_key.api_key)

    response = server_client.post(EVENTS, EVENT, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "key_revoked"
    assert not Activity.objects.exists()


@pytest.mark.django_db
def test_a_malformed_authorization_header_gets_401(server_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {server_key.key}")

    response = client.post(EVENTS, EVENT, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "bad_authorization_header"


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(server_key, server_client):
    server_client.post(EVENTS, EVENT, format="json")
    api_key = ApiKey.objects.get()
    first = api_key.last_used_at

    server_client.post(EVENTS, EVENT, format="json")
    api_key_mark_used(api_key=api_key, now=first + datetime.timedelta(seconds=30))

    assert first is not None
    assert ApiKey.objects.get().last_used_at == first
    later = first + datetime.timedelta(seconds=61)
    api_key_mark_used(api_key=api_key, now=later)
    assert ApiKey.objects.get().last_used_at == later


@pytest.mark.django_db
def test_past_the_keys_rate_limit_requests_get_429(server_key, server_client):
    ApiKey.objects.filter(pk=server_key.api_key.pk).update(rate_limit_per_minute=2)

    statuses = [server_client.post(EVENTS, EVENT, format="json").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = server_client.post(EVENTS, EVENT, format="json")
    assert response.json()["error"] == "throttled"
    assert 0 < response.json()["retry_after"] <= 60
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.django_db
def test_rate_limits_are_counted_per_key(server_key, server_client):
    ApiKey.objects.filter(pk=server_key.api_key.pk).update(rate_limit_per_minute=1)
    other = client_for(api_key_create(name="Other", kind="server").key)

    server_client.post(EVENTS, EVENT, format="json")

    assert server_client.post(EVENTS, EVENT, format="json").status_code == 429
    assert other.post(EVENTS, EVENT, format="json").status_code == 200


# --- Browser keys ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_browser_key_records_behaviour_and_lets_its_site_read_the_reply(browser_client):
    response = browser_client.post(EVENTS, EVENT, format="json")

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in response.headers["Vary"]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["consent", "owner", "lifecycle_stage", "lead_score", "score"])
def test_a_browser_key_is_refused_each_forbidden_event_field(browser_client, field):
    response = browser_client.post(EVENTS, {**EVENT, field: "anything"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"] == "browser_key_forbidden"
    assert f"cannot set {field}" in response.json()["fields"][field][0]
    assert not Activity.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["consent", "owner", "lifecycle_stage", "lead_score"])
def test_a_browser_key_is_refused_each_forbidden_trait(browser_client, field):
    response = browser_client.post(
        "/api/v1/identify/",
        {"email": "ada@example.com", "traits": {field: "x"}},
        format="json",
    )

    assert response.status_code == 403
    assert f"traits.{field}" in response.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind",
    ["consent_granted", "consent_withdrawn", "unsubscribed", "lifecycle_stage_changed",
     "handed_off", "deal_stage_changed", "note_added", "email_opened", "email_clicked",
     "order_placed", "signed_up", "cart_abandoned", "onboarding_milestone_reached",
     "deal_won", "webinar_attended"],
)  # fmt: skip
def test_a_browser_key_may_send_only_behaviour_events(browser_client, kind):
    response = browser_client.post(EVENTS, {**EVENT, "type": kind}, format="json")

    assert response.status_code == 403
    assert kind in response.json()["fields"]["type"][0]


@pytest.mark.django_db
def test_a_forbidden_event_in_a_browser_batch_is_refused_and_the_good_ones_kept(browser_client):
    response = browser_client.post(
        EVENTS,
        {"events": [EVENT, {**EVENT, "type": "order_placed"}, {**EVENT, "consent": True}]},
        format="json",
    )

    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["forbidden"]) == (1, 2)
    assert [result["status"] for result in body["results"]] == [
        "accepted",
        "forbidden",
        "forbidden",
    ]
    assert "server key" in body["results"][1]["errors"]["type"][0]
    assert "consent" in body["results"][2]["errors"]
    assert list(Activity.objects.values_list("kind", flat=True)) == ["page_viewed"]


@pytest.mark.django_db
def test_a_browser_batch_with_only_forbidden_events_is_a_403(browser_client):
    response = browser_client.post(
        EVENTS, {"events": [{**EVENT, "type": "order_placed"}]}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"] == "browser_key_forbidden"
    assert "events.0.type" in response.json()["fields"]
    assert not Activity.objects.exists()


@pytest.mark.django_db
def test_custom_kinds_a_site_allows_are_taken_from_a_browser_key(browser_client, settings):
    settings.API_BROWSER_EVENT_KINDS = ["video_played"]

    allowed = browser_client.post(EVENTS, {**EVENT, "type": "video_played"}, format="json")
    other = browser_client.post(EVENTS, {**EVENT, "type": "webinar_attended"}, format="json")

    assert (allowed.status_code, other.status_code) == (200, 403)


@pytest.mark.django_db
@pytest.mark.parametrize("origin", ["https://evil.example", None])
def test_a_browser_key_is_refused_outside_its_origins(browser_key, origin):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    client = client_for(browser_key.key, **headers)

    response = client.post(EVENTS, EVENT, format="json")

    assert response.status_code == 403
    assert response.json()["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/contacts/", "/api/v1/companies/", "/api/v1/deals/"])
def test_a_browser_key_cannot_read_the_crm(browser_client, path):
    response = browser_client.get(path)

    assert response.status_code == 403
    assert response.json()["error"] == "server_key_required"


@pytest.mark.django_db
@pytest.mark.parametrize("path", [EVENTS, "/api/v1/identify/"])
def test_preflight_is_answered_for_an_allowed_origin(browser_key, path):
    response = APIClient().options(
        path,
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.django_db
def test_preflight_is_refused_for_other_origins_and_revoked_keys(browser_key):
    def preflight(origin):
        return APIClient().options(
            EVENTS, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
        )

    other = preflight("https://evil.example")
    api_key_revoke(api_key=browser_key.api_key)
    revoked = preflight(SITE)

    assert other.status_code == 403
    assert revoked.status_code == 403
    assert "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.django_db
def test_a_revoked_key_stays_revoked_at_its_first_time(server_key):
    first = api_key_revoke(api_key=server_key.api_key).revoked_at

    again = api_key_revoke(api_key=ApiKey.objects.get()).revoked_at

    assert again == first
    assert first <= timezone.now()
