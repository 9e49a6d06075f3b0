"""The send gate (consent, suppression, region, cap, quiet hours) and the send ledger."""

import datetime
from unittest import mock

import pytest
from django.core import mail

from crm.models import ConsentEntry, Suppression
from crm.services import suppression_add
from sequences.gate import evaluate
from sequences.models import Enrollment, EnrollmentEvent, OutboundMessage
from sequences.services import enrollment_create
from tests.factories import ConsentEntryFactory, ContactFactory, OutboundMessageFactory
from tests.sequences import backends
from tests.sequences.conftest import build_sequence, email_step, run, step

pytestmark = pytest.mark.django_db


@pytest.fixture
def scripted_esp(settings):
    settings.EMAIL_BACKEND = "tests.sequences.backends.ScriptedBackend"
    backends.SCRIPT.clear()
    backends.CALLS.clear()
    return backends


def enroll(contact, sequence, clock):
    return enrollment_create(contact=contact, sequence=sequence, now=clock.now)


def test_consent_withdrawn_between_enrollment_and_send_stops_the_send(
    clock, consenting_contact, newsletter
):
    sequence = build_sequence(
        [step("wait", "wait_duration", duration={"hours": 1}), email_step("hello")]
    )
    enrollment = enroll(consenting_contact, sequence, clock)
    run(clock)
    ConsentEntryFactory(contact=consenting_contact, topic=newsletter, is_granted=False)

    clock.advance(hours=2)
    run(clock)

    assert mail.outbox == []
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.reason) == ("exited", "denied:consent_withdrawn")
    assert OutboundMessage.objects.get().reason == "consent_withdrawn"
    assert enrollment.events.filter(kind="denied", reason="consent_withdrawn").exists()


@pytest.mark.parametrize(
    ("country", "entry", "reason"),
    [
        ("", None, "no_consent_unknown_region"),
        ("DE", None, "no_consent"),
        ("US", None, ""),
        ("US", False, "consent_withdrawn"),
        ("DE", True, ""),
    ],
)
def test_region_rules_for_consent(clock, newsletter, country, entry, reason):
    contact = ContactFactory(country=country)
    if entry is not None:
        ConsentEntryFactory(contact=contact, topic=newsletter, is_granted=entry)
    sequence = build_sequence([email_step("hello")])

    decision = evaluate(contact, sequence, {"key": "hello", "config": {}}, clock.now)

    assert (decision.allowed, decision.reason) == (not reason, reason)


@pytest.mark.parametrize(
    ("reason", "transactional", "allowed"),
    [
        (Suppression.Reason.UNSUBSCRIBED, False, False),
        (Suppression.Reason.UNSUBSCRIBED, True, True),
        (Suppression.Reason.HARD_BOUNCE, True, False),
        (Suppression.Reason.COMPLAINT, True, False),
    ],
)
def test_suppression_wins_and_transactional_still_stops_on_bounces(
    clock, consenting_contact, reason, transactional, allowed
):
    suppression_add(email=consenting_contact.email, reason=reason, source="test")
    sequence = build_sequence([email_step("hello")], is_transactional=transactional)

    decision = evaluate(consenting_contact, sequence, {"key": "hello", "config": {}}, clock.now)

    assert decision.allowed is allowed


@pytest.mark.parametrize("action", ["defer", "skip"])
def test_frequency_cap_defers_or_skips_as_configured(clock, consenting_contact, settings, action):
    settings.SEQUENCES_FREQUENCY_CAP = 2
    for days_ago in (3, 1):
        OutboundMessageFactory(
            contact=consenting_contact,
            created_at=clock.now - datetime.timedelta(days=days_ago),
        )
    sequence = build_sequence(
        [email_step("hello", on_frequency_cap=action), email_step("after")], key=f"cap-{action}"
    )
    enrollment = enroll(consenting_contact, sequence, clock)

    run(clock)

    enrollment.refresh_from_db()
    if action == "defer":
        assert mail.outbox == []
        assert enrollment.due_at == clock.now + datetime.timedelta(days=4)
        assert enrollment.events.filter(kind="deferred", reason="frequency_cap").exists()
    else:
        ledger = OutboundMessage.objects.get(enrollment=enrollment, step="hello")
        assert (ledger.state, ledger.reason) == ("skipped", "frequency_cap")
        # "after" is capped too, and defers (its default), so nothing was sent.
        assert mail.outbox == []


def test_quiet_hours_move_the_send_to_the_morning_in_the_contacts_time_zone(
    clock, consenting_contact
):
    consenting_contact.time_zone = "America/New_York"
    consenting_contact.save()
    clock.now = datetime.datetime(2026, 3, 11, 3, 0, tzinfo=datetime.UTC)  # 23:00 in New York
    sequence = build_sequence([email_step("hello")])
    enrollment = enroll(consenting_contact, sequence, clock)

    run(clock)

    enrollment.refresh_from_db()
    assert mail.outbox == []
    # 08:00 in New York on 11 March (EDT, UTC-4) is 12:00 UTC.
    assert enrollment.due_at == datetime.datetime(2026, 3, 11, 12, 0, tzinfo=datetime.UTC)
    clock.now = enrollment.due_at
    run(clock)
    assert len(mail.outbox) == 1


def test_esp_rejecting_one_recipient_fails_only_that_one(clock, newsletter, scripted_esp):
    contacts = ContactFactory.create_batch(5)
    for contact in contacts:
        ConsentEntryFactory(contact=contact, topic=newsletter)
    scripted_esp.SCRIPT[contacts[2].email] = ["refuse"]
    sequence = build_sequence([email_step("hello")])
    for contact in contacts:
        enroll(contact, sequence, clock)

    run(clock)
    clock.advance(hours=1)
    run(clock)

    states = dict(OutboundMessage.objects.values_list("contact_id", "state"))
    assert states.pop(contacts[2].pk) == "failed"
    assert set(states.values()) == {"sent"}
    assert sorted(scripted_esp.CALLS) == sorted(c.email for c in contacts)
    assert "recipient refused" in OutboundMessage.objects.get(contact=contacts[2]).reason


def test_transient_esp_error_retries_with_backoff_then_sends(
    clock, consenting_contact, scripted_esp
):
    scripted_esp.SCRIPT[consenting_contact.email] = ["503", "503"]
    sequence = build_sequence([email_step("hello")])
    enroll(consenting_contact, sequence, clock)

    for _ in range(3):
        run(clock)
        clock.advance(minutes=10)

    ledger = OutboundMessage.objects.get()
    assert (ledger.state, ledger.attempts) == ("sent", 3)
    assert len(mail.outbox) == 1


def test_retries_run_out_then_the_message_fails_with_the_reason(
    clock, consenting_contact, scripted_esp
):
    scripted_esp.SCRIPT[consenting_contact.email] = ["503"] * 10
    sequence = build_sequence([email_step("hello")])
    enroll(consenting_contact, sequence, clock)

    for _ in range(8):
        run(clock)
        clock.advance(hours=1)

    ledger = OutboundMessage.objects.get()
    assert ledger.state == "failed"
    assert ledger.reason.startswith("gave up after 5 attempts: ESP 503")
    assert len(scripted_esp.CALLS) == 5


def test_a_crash_after_the_esp_accepted_never_sends_again(clock, consenting_contact, scripted_esp):
    sequence = build_sequence([email_step("hello")])
    enroll(consenting_contact, sequence, clock)

    with (
        mock.patch("sequences.services.running.emails_record", side_effect=SystemExit),
        pytest.raises(SystemExit),
    ):
        run(clock)
    clock.advance(minutes=10)
    run(clock)
    run(clock)

    assert [consenting_contact.email] == scripted_esp.CALLS
    assert OutboundMessage.objects.get().state == "unknown"


def test_missing_personal_data_refuses_the_send_with_reason(clock, consenting_contact):
    sequence = build_sequence([email_step("hello")])
    template = sequence.steps.get().template
    template.html = template.html.replace('|default:"there"', "")  # edited after activation
    template.save()
    consenting_contact.first_name = ""
    consenting_contact.save()
    enrollment = enroll(consenting_contact, sequence, clock)

    run(clock)

    assert mail.outbox == []
    ledger = OutboundMessage.objects.get()
    assert (ledger.state, ledger.reason) == ("skipped", "missing_data:contact.first_name")
    enrollment.refresh_from_db()
    assert enrollment.events.filter(kind="send_failed").exists()


def test_every_deny_is_on_the_history(clock, consenting_contact):
    suppression_add(email=consenting_contact.email, reason="manual", source="test")
    sequence = build_sequence([email_step("hello")])
    enrollment = enroll(consenting_contact, sequence, clock)

    run(clock)

    event = EnrollmentEvent.objects.get(enrollment=enrollment, kind="denied")
    assert event.reason == "suppressed:manual"
    assert Enrollment.objects.get().reason == "denied:suppressed:manual"
    assert ConsentEntry.objects.filter(contact=consenting_contact).count() == 1
