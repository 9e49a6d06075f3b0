"""GET /api/v1/sequences/ and POST /api/v1/sequences/{key}/enroll/ (server keys only)."""

import pytest
from django.core import mail

from sequences.models import Enrollment, Sequence
from sequences.services import sequence_pause
from tests.factories import ConsentEntryFactory, ContactFactory, SegmentFactory
from tests.sequences.conftest import build_sequence, email_step, run

pytestmark = pytest.mark.django_db

ENROLL = "/api/v1/sequences/{}/enroll/"


@pytest.fixture
def welcome(newsletter):
    return build_sequence([email_step("hello")], key="welcome", name="Welcome")


def test_list_shows_key_name_status_version_topic_owner(server_client, welcome):
    build_sequence([email_step("hello")], key="drafty", activate=False)

    response = server_client.get("/api/v1/sequences/", secure=True)

    assert response.status_code == 200
    rows = {row["key"]: row for row in response.json()["results"]}
    assert rows["welcome"] == {
        "key": "welcome",
        "name": "Welcome",
        "status": "active",
        "version": 1,
        "topic": "newsletter",
        "is_transactional": False,
        "owner": welcome.owner_id,
    }
    assert rows["drafty"]["status"] == "draft" and rows["drafty"]["version"] is None


@pytest.mark.parametrize("by", ["contact", "email"])
def test_enroll_by_id_or_email_goes_through_the_enrollment_service(
    server_client, welcome, django_capture_on_commit_callbacks, by
):
    contact = ContactFactory(email="ada@example.com")
    body = {"contact": contact.pk} if by == "contact" else {"email": "ADA@example.com"}

    with django_capture_on_commit_callbacks(execute=False):
        response = server_client.post(ENROLL.format("welcome"), body, format="json", secure=True)

    assert response.status_code == 201, response.json()
    enrollment = Enrollment.objects.get(contact=contact, sequence=welcome)
    assert response.json()["id"] == enrollment.pk
    assert response.json()["sequence"] == "welcome"
    assert enrollment.events.get(kind="entered").reason == "api"


def test_enrolling_twice_is_a_409(server_client, welcome):
    contact = ContactFactory()
    server_client.post(
        ENROLL.format("welcome"), {"contact": contact.pk}, format="json", secure=True
    )

    again = server_client.post(
        ENROLL.format("welcome"), {"contact": contact.pk}, format="json", secure=True
    )

    assert again.status_code == 409
    assert again.json()["error"] == "already_enrolled"
    assert "already in this sequence" in again.json()["message"]


@pytest.mark.parametrize("state", ["draft", "paused"])
def test_an_inactive_sequence_refuses_with_409(server_client, newsletter, state):
    sequence = build_sequence([email_step("hello")], key="later", activate=state == "paused")
    if state == "paused":
        sequence_pause(sequence=sequence)

    response = server_client.post(
        ENROLL.format("later"), {"contact": ContactFactory().pk}, format="json", secure=True
    )

    assert response.status_code == 409
    assert response.json()["error"] == "sequence_inactive"
    assert not Enrollment.objects.exists()


def test_a_contact_outside_the_audience_is_a_409(server_client, newsletter):
    build_sequence(
        [email_step("hello")], key="narrow", audience_segment=SegmentFactory(key="nobody")
    )

    response = server_client.post(
        ENROLL.format("narrow"), {"contact": ContactFactory().pk}, format="json", secure=True
    )

    assert response.status_code == 409
    assert response.json()["error"] == "outside_audience"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact": 999999}, "contact"),
        ({"email": "nobody@example.com"}, "email"),
        ({}, "contact"),
        ({"contact": 1, "surprise": True}, "surprise"),
    ],
)
def test_unknown_contact_or_bad_body_is_a_400_naming_the_field(server_client, welcome, body, field):
    response = server_client.post(ENROLL.format("welcome"), body, format="json", secure=True)

    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_unknown_sequence_is_a_404(server_client, db):
    response = server_client.post(ENROLL.format("nope"), {"contact": 1}, format="json", secure=True)

    assert response.status_code == 404


def test_browser_keys_get_403_on_both_endpoints(browser_client, welcome):
    contact = ContactFactory()

    listing = browser_client.get("/api/v1/sequences/", secure=True)
    enroll = browser_client.post(
        ENROLL.format("welcome"), {"contact": contact.pk}, format="json", secure=True
    )

    assert listing.status_code == 403
    assert enroll.status_code == 403
    assert enroll.json()["error"] == "server_key_required"
    assert not Enrollment.objects.exists()
    assert Sequence.objects.get(key="welcome").status == "active"


def test_the_schema_documents_both_operations(client, db):
    schema = client.get("/api/v1/schema/?format=json", secure=True).json()

    assert "get" in schema["paths"]["/api/v1/sequences/"]
    enroll = schema["paths"]["/api/v1/sequences/{key}/enroll/"]["post"]
    assert {"201", "400", "403", "404", "409"} <= set(enroll["responses"])


def test_an_api_enrollment_still_passes_the_send_gate(server_client, clock, newsletter):
    build_sequence([email_step("hello")], key="welcome")
    no_consent = ContactFactory(country="DE")
    consented = ContactFactory(country="DE")
    ConsentEntryFactory(contact=consented, topic=newsletter)

    for contact in (no_consent, consented):
        response = server_client.post(
            ENROLL.format("welcome"), {"contact": contact.pk}, format="json", secure=True
        )
        assert response.status_code == 201
    run(clock)

    assert [message.to for message in mail.outbox] == [[consented.email]]
    refused = Enrollment.objects.get(contact=no_consent)
    assert (refused.state, refused.reason) == ("exited", "denied:no_consent")
