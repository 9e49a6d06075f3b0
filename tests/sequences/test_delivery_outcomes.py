"""What the ESP call's failure means for the ledger: retry what the ESP never got.

anymail's real Postmark backend talks to a stub ESP on 127.0.0.1 (esp_stub.py), so the
exceptions are the ones production sees (issue #9, findings 21 and 23).
"""

import datetime
from unittest import mock

import pytest
import requests

from config.env import anymail_settings
from sequences.models import Enrollment, OutboundMessage
from sequences.services import enrollment_create
from tests.sequences.conftest import build_sequence, email_step, run, step


@pytest.fixture
def esp(stub_esp):
    return stub_esp


def enroll(contact, clock, **fields):
    steps = [email_step("hello"), step("pause", "wait_duration", duration={"days": 1})]
    sequence = build_sequence(steps, **fields)
    return enrollment_create(contact=contact, sequence=sequence, now=clock.now)


def test_a_refused_connection_is_retried_and_sent_once_the_esp_is_back(
    esp, clock, consenting_contact
):
    enrollment = enroll(consenting_contact, clock)

    run(clock)
    row = OutboundMessage.objects.get()
    assert (row.state, row.attempts) == ("retry", 1)
    assert row.reason.startswith("could not connect to the ESP")
    esp.start()
    clock.advance(minutes=5)
    run(clock)

    row.refresh_from_db()
    assert row.state == "sent"
    assert [uuid for uuid, _, _ in esp.received] == [str(row.uuid)]  # the refused one never came
    assert esp.accepted_count[str(row.uuid)] == 1
    enrollment.refresh_from_db()
    assert enrollment.current_step == "pause"


def test_an_esp_refusing_past_the_retry_budget_fails_with_its_reason_never_unknown(
    esp, clock, consenting_contact
):
    enrollment = enroll(consenting_contact, clock, on_send_failure="exit")

    for _ in range(8):
        run(clock)
        clock.advance(hours=1)

    row = OutboundMessage.objects.get()
    assert row.state == "failed"
    assert row.reason.startswith("gave up after 5 attempts: could not connect to the ESP")
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.reason) == ("failed", row.reason[:200])


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ("slow", "no answer from the ESP"),  # read timeout: the ESP has the request
        ("drop", "no answer from the ESP"),  # connection closed after the request
    ],
)
def test_a_request_that_may_have_reached_the_esp_is_unknown_and_never_resent(
    esp, clock, consenting_contact, plan, reason
):
    esp.plan = lambda recipient, attempt: plan
    esp.slow_seconds = 1.5
    esp.start()
    enrollment = enroll(consenting_contact, clock)

    run(clock)
    clock.advance(hours=7)  # past the re-check: still waiting, still not resent
    run(clock)

    row = OutboundMessage.objects.get()
    assert row.state == "unknown"
    assert row.reason.startswith(reason)
    assert len(esp.received) == 1
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.current_step) == ("active", "hello")  # waits on it
    assert enrollment.events.filter(kind="awaiting_reconciliation").exists()


def test_a_server_error_is_retried_with_backoff(esp, clock, consenting_contact):
    esp.plan = lambda recipient, attempt: "500" if attempt == 1 else "accept"
    esp.start()
    enroll(consenting_contact, clock)

    run(clock)
    assert OutboundMessage.objects.get().state == "retry"
    clock.advance(minutes=5)
    run(clock)

    assert OutboundMessage.objects.get().state == "sent"
    assert [outcome for _, _, outcome in esp.received][:2] == ["500", "accept"]


def test_a_timeout_setting_left_as_text_fails_before_the_request_and_is_retried(
    esp, clock, consenting_contact, settings
):
    """Finding 23: ANYMAIL_REQUESTS_TIMEOUT=5 stayed "5" and every send became unknown."""
    esp.start()
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": "5"}
    enroll(consenting_contact, clock)

    run(clock)

    row = OutboundMessage.objects.get()
    assert row.state == "retry"
    assert row.reason.startswith("error before the request: ValueError")
    assert esp.received == []


def test_the_timeout_from_the_environment_is_a_number_and_the_email_goes_out(
    esp, clock, consenting_contact, settings
):
    esp.start()
    settings.ANYMAIL = anymail_settings(
        {
            "ANYMAIL_POSTMARK_SERVER_TOKEN": "test-token",
            "ANYMAIL_POSTMARK_API_URL": esp.url,
            "ANYMAIL_REQUESTS_TIMEOUT": "5",
        }
    )
    enroll(consenting_contact, clock)

    run(clock)

    assert settings.ANYMAIL["REQUESTS_TIMEOUT"] == 5
    assert OutboundMessage.objects.get().state == "sent"


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), "retry"),
        (requests.exceptions.ReadTimeout("read timed out"), "unknown"),
        (requests.exceptions.ChunkedEncodingError("broken answer"), "unknown"),
    ],
)
def test_requests_errors_are_classified_by_whether_the_request_went_out(
    esp, clock, consenting_contact, error, state
):
    # anymail wraps whatever requests raises: patch below it, at the network boundary.
    enroll(consenting_contact, clock)

    with mock.patch("requests.Session.request", side_effect=error):
        run(clock)

    assert OutboundMessage.objects.get().state == state


def test_an_unknown_email_holds_its_enrollment_until_the_max_duration(
    esp, clock, consenting_contact
):
    esp.plan = lambda recipient, attempt: "drop"
    esp.start()
    enrollment = enroll(consenting_contact, clock, max_duration_days=2)

    run(clock)
    clock.advance(days=3)
    run(clock)

    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.reason) == ("exited", "max_duration")
    assert not Enrollment.objects.filter(state__in=Enrollment.LIVE_STATES).exists()
    assert OutboundMessage.objects.get().state == "unknown"
    assert clock.now - enrollment.enrolled_at > datetime.timedelta(days=2)
