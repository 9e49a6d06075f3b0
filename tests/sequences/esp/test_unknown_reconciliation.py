"""`unknown` emails are resolved, never left: webhooks, the ESP's API, staff (finding 22).

Emails become unknown for real here: anymail's Postmark backend sends to a stub ESP
on 127.0.0.1 that drops the connection after reading the request, or answers too late.
"""

import datetime
import uuid

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.core import mail
from django.urls import reverse

from sequences.models import Enrollment, OutboundMessage, UnknownMessagesAlert
from sequences.services import enrollment_create
from sequences.tasks import reconcile_unknown_messages_task
from tests.factories import UserFactory
from tests.sequences.conftest import build_sequence, email_step, run
from tests.sequences.esp.conftest import payload, post_postmark, subs

CHANGELIST = "admin:sequences_outboundmessage_changelist"


@pytest.fixture
def sns_cert_fetches():
    """No SES here: leave requests.get alone (the ESP lookup uses it against the stub)."""


@pytest.fixture
def unknown_send(stub_esp, clock, consenting_contact):
    """Enroll into hello → second; the ESP drops hello's first request (it may have it)."""

    def start(plan_first="drop", **fields):
        stub_esp.plan = lambda recipient, attempt: plan_first if attempt == 1 else "accept"
        stub_esp.slow_seconds = 1.5
        stub_esp.start()
        sequence = build_sequence([email_step("hello"), email_step("second")], **fields)
        enrollment = enrollment_create(contact=consenting_contact, sequence=sequence, now=clock.now)
        run(clock)
        row = OutboundMessage.objects.get(step="hello")
        assert row.state == "unknown"
        return enrollment, row

    return start


def assert_waits_on_hello(enrollment):
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.current_step) == ("active", "hello")
    assert not OutboundMessage.objects.filter(step="second").exists()


def test_an_unknown_email_holds_its_enrollment_instead_of_moving_on(unknown_send, clock):
    enrollment, _ = unknown_send()

    clock.advance(hours=7)  # past the re-check
    run(clock)

    assert_waits_on_hello(enrollment)


def test_a_delivered_webhook_resolves_an_unknown_email_as_sent_and_the_enrollment_goes_on(
    unknown_send, client, clock, stub_esp
):
    enrollment, row = unknown_send()

    response = post_postmark(
        client, payload("postmark_delivered.json", **subs(row, message_id="pm-123"))
    )
    run(clock)

    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.state, row.resolution, row.esp_message_id) == ("sent", "webhook", "pm-123")
    assert row.reason.startswith("sent: Postmark delivered event") or "delivered" in row.reason
    assert OutboundMessage.objects.get(step="second").state == "sent"
    assert enrollment.events.filter(kind="reconciled_sent").exists()
    assert len(stub_esp.received) == 2  # hello once (the dropped request), second once


def test_a_rejection_event_resolves_unknown_as_failed_and_the_failure_path_is_followed(
    unknown_send, clock
):
    enrollment, row = unknown_send(on_send_failure="exit")

    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(
            event_type="rejected",
            event_id=uuid.uuid4().hex,
            recipient=row.contact.email,
            metadata={"message_uuid": str(row.uuid)},
            timestamp=clock.now,
            description="Blocked by the ESP",
            esp_event={},
        ),
        esp_name="Postmark",
    )
    from sequences.esp.processing import esp_events_process

    esp_events_process()
    run(clock)

    row.refresh_from_db()
    assert (row.state, row.resolution) == ("failed", "webhook")
    enrollment.refresh_from_db()
    assert enrollment.state == "failed"
    assert not OutboundMessage.objects.filter(step="second").exists()


def test_the_esp_api_finds_an_unknown_email_and_it_is_resolved_as_sent(
    unknown_send, clock, stub_esp
):
    enrollment, row = unknown_send(plan_first="slow")  # accepted, answered too late

    result = reconcile_unknown_messages_task()
    run(clock)

    row.refresh_from_db()
    assert (row.state, row.resolution) == ("sent", "esp_lookup")
    assert row.esp_message_id == stub_esp.accepted[str(row.uuid)]
    assert result.startswith("resolved 1")
    assert OutboundMessage.objects.get(step="second").state == "sent"


def test_an_email_the_esp_api_cannot_find_stays_unknown(unknown_send, clock):
    enrollment, row = unknown_send(plan_first="drop")  # the stub never accepted it

    reconcile_unknown_messages_task()

    row.refresh_from_db()
    assert row.state == "unknown"  # not finding it proves nothing: staff decide
    assert_waits_on_hello(enrollment)


def test_too_many_unknown_emails_alert_the_owners_once_a_day(settings, clock, db):
    settings.SEQUENCES_UNKNOWN_ALERT_THRESHOLD = 2
    sequence = build_sequence([email_step("hello")])
    from tests.factories import OutboundMessageFactory

    OutboundMessageFactory.create_batch(2, state="unknown", enrollment__sequence=sequence)

    reconcile_unknown_messages_task()
    reconcile_unknown_messages_task()

    alert = UnknownMessagesAlert.objects.get()
    assert (alert.count, alert.threshold) == (2, 2)
    alerts = [m for m in mail.outbox if "unknown state" in m.subject]
    assert len(alerts) == 1
    assert alerts[0].to == [sequence.owner.email]


def test_below_the_threshold_nobody_is_alerted(settings, db):
    settings.SEQUENCES_UNKNOWN_ALERT_THRESHOLD = 5
    from tests.factories import OutboundMessageFactory

    OutboundMessageFactory.create_batch(4, state="unknown")

    reconcile_unknown_messages_task()

    assert not UnknownMessagesAlert.objects.exists()


# --- The admin action ------------------------------------------------------------------


def resolve(client, row, **form):
    data = {"action": "resolve_unknown", "_selected_action": [row.pk], **form}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_staff_resolve_an_unknown_email_as_failed_with_a_reason(
    unknown_send, client, superuser, clock
):
    enrollment, row = unknown_send(on_send_failure="exit")
    client.force_login(superuser)

    response = resolve(
        client, row, apply="1", resolution="staff_failed", note="Not in Postmark's activity"
    )
    run(clock)

    assert response.status_code == 200
    row.refresh_from_db()
    assert (row.state, row.resolution, row.resolved_by) == ("failed", "staff_failed", superuser)
    assert row.resolution_note == "Not in Postmark's activity"
    enrollment.refresh_from_db()
    assert enrollment.state == "failed"  # on_send_failure: exit
    assert enrollment.events.filter(kind="resolved_staff_failed").exists()


def test_staff_must_give_a_reason(unknown_send, client, superuser):
    _, row = unknown_send()
    client.force_login(superuser)

    response = resolve(client, row, apply="1", resolution="staff_sent", note="")

    assert "Resolve unknown emails" in response.content.decode()
    row.refresh_from_db()
    assert row.state == "unknown"


def test_staff_may_resend_what_the_esp_did_not_get_and_it_goes_out_once(
    unknown_send, client, superuser, clock, stub_esp
):
    enrollment, row = unknown_send()
    client.force_login(superuser)

    resolve(client, row, apply="1", resolution="staff_resend", note="Postmark has no record")
    run(clock)

    row.refresh_from_db()
    assert (row.state, row.attempts) == ("sent", 2)
    assert [uuid for uuid, _, _ in stub_esp.received].count(str(row.uuid)) == 2
    assert stub_esp.accepted_count[str(row.uuid)] == 1


def test_resend_is_refused_once_the_enrollment_no_longer_waits(
    unknown_send, client, superuser, clock
):
    enrollment, row = unknown_send()
    Enrollment.objects.filter(pk=enrollment.pk).update(state="exited", due_at=None)
    client.force_login(superuser)

    response = resolve(client, row, apply="1", resolution="staff_resend", note="not received")

    assert "cannot be resent" in response.content.decode()
    row.refresh_from_db()
    assert row.state == "unknown"


def test_view_only_roles_cannot_resolve(unknown_send, client):
    _, row = unknown_send()
    client.force_login(UserFactory(is_staff=True, groups=["Marketing"]))

    resolve(client, row, apply="1", resolution="staff_sent", note="sure")

    row.refresh_from_db()
    assert row.state == "unknown"


def test_the_ledger_list_warns_about_unknown_emails(unknown_send, client, superuser):
    unknown_send()
    client.force_login(superuser)

    response = client.get(reverse(CHANGELIST))

    assert "1 email(s) are unknown" in response.content.decode()


def test_stale_claims_use_the_lease_then_become_unknown(clock, db):
    from sequences.services import ledger_mark_stale_unknown
    from sequences.services.moves import lease_length
    from tests.factories import OutboundMessageFactory

    row = OutboundMessageFactory(state="claimed", claimed_at=clock.now)

    assert ledger_mark_stale_unknown(now=clock.now + lease_length()) == 0
    assert ledger_mark_stale_unknown(now=clock.now + lease_length() + datetime.timedelta(1)) == 1
    row.refresh_from_db()
    assert row.state == "unknown"
