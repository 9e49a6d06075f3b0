"""Every email goes through one path: suppressions, the send ledger, a matchable message id.

Issue 9, finding 13: opt-in confirmations, handoff and SLA notices, breaker and complaint
alerts and template test sends used to call Django's mail API directly: no ledger row,
no suppression check, no id a webhook could match.
"""

import ast
import contextlib
import datetime
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.emails import email_hash
from crm.models import ConsentTopic, Suppression
from crm.services import mail as system_mail
from crm.services import opt_in_request_send, suppression_add
from crm.services.mail import (
    SYSTEM_MAIL_BLOCKING,
    SystemEmailKind,
    SystemEmailNotConfigured,
    check_system_email_sender,
    system_email_send,
)
from scoring.services.notifications import handoff_notify_owner, handoff_sla_check
from sequences.esp.breaker import breaker_alert_send, complaint_alert_send
from sequences.esp.processing import esp_events_process
from sequences.gate import TRANSACTIONAL_BLOCKING
from sequences.models import ComplaintRateAlert, EspEvent, OutboundMessage, Sequence
from sequences.services import template_send_test
from tests.factories import (
    CircuitBreakerTripFactory,
    ContactFactory,
    EmailTemplateFactory,
    HandoffFactory,
    HandoffRuleFactory,
    SequenceFactory,
    UserFactory,
)
from tests.sequences import backends
from tests.sequences.esp.conftest import payload, post_postmark

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
RECIPIENT = "someone@example.com"


# --- Each call site, driven so that its one email goes to `to` -------------------------------


def opt_in_confirmation(to: str) -> None:
    opt_in_request_send(email=to, topic=ConsentTopic.objects.get(key="newsletter"))


def handoff_notice(to: str) -> None:
    handoff = HandoffFactory(owner=UserFactory(email=to))
    handoff_notify_owner(handoff_id=handoff.pk)


def sla_notice(to: str) -> None:
    rule = HandoffRuleFactory(sla_manager=UserFactory(username="manager", email=to))
    past = timezone.now() - datetime.timedelta(minutes=1)
    HandoffFactory(rule=rule, owner=UserFactory(email="seller@nextstep.test"), sla_due_at=past)
    handoff_sla_check()


def breaker_alert(to: str) -> None:
    SequenceFactory(status=Sequence.Status.ACTIVE, owner=UserFactory(email=to))
    breaker_alert_send(trip=CircuitBreakerTripFactory())


def complaint_alert(to: str) -> None:
    SequenceFactory(status=Sequence.Status.ACTIVE, owner=UserFactory(email=to))
    alert = ComplaintRateAlert.objects.create(
        day=timezone.localdate(),
        domain="mail.example.com",
        rate=0.002,
        complaints=2,
        delivered=1000,
        alerted_at=timezone.now(),
    )
    complaint_alert_send(alert=alert)


def template_test(to: str) -> None:
    # A suppressed address is refused with a message the admin shows.
    with contextlib.suppress(ValidationError):
        template_send_test(
            template=EmailTemplateFactory(), contact=ContactFactory(), user=UserFactory(email=to)
        )


CALL_SITES: dict[str, tuple[Callable[[str], None], str]] = {
    "opt-in confirmation": (opt_in_confirmation, SystemEmailKind.OPT_IN_CONFIRMATION),
    "handoff notice": (handoff_notice, SystemEmailKind.HANDOFF_NOTICE),
    "SLA notice": (sla_notice, SystemEmailKind.SLA_NOTICE),
    "breaker alert": (breaker_alert, SystemEmailKind.BREAKER_ALERT),
    "complaint alert": (complaint_alert, SystemEmailKind.COMPLAINT_ALERT),
    "template test send": (template_test, SystemEmailKind.TEMPLATE_TEST),
}


@pytest.mark.parametrize("site", CALL_SITES)
def test_every_system_email_leaves_a_ledger_row_with_the_id_webhooks_match(site):
    send, kind = CALL_SITES[site]

    send(RECIPIENT)

    [message] = mail.outbox
    row = OutboundMessage.objects.get()
    assert message.to == [RECIPIENT]
    assert (row.kind, row.state, row.is_marketing, row.enrollment) == (kind, "sent", False, None)
    assert row.recipient_hash == email_hash(RECIPIENT)
    assert message.metadata["message_uuid"] == str(row.uuid)
    assert row.esp_message_id == str(message.anymail_status.message_id) != ""
    # Opaque ids only: no address or name travels to the ESP in metadata.
    assert "@" not in repr(message.metadata)


@pytest.mark.parametrize("reason", [Suppression.Reason.HARD_BOUNCE, Suppression.Reason.COMPLAINT])
@pytest.mark.parametrize("site", CALL_SITES)
def test_a_bounced_or_complaining_address_gets_no_system_email(site, reason):
    send, kind = CALL_SITES[site]
    suppression_add(email=RECIPIENT.upper(), reason=reason, source="esp:postmark")

    send(RECIPIENT)

    assert mail.outbox == []
    row = OutboundMessage.objects.get()
    assert (row.kind, row.state, row.reason) == (kind, "skipped", reason)


def test_unsubscribed_or_sunset_addresses_still_get_system_email():
    suppression_add(email=RECIPIENT, reason="unsubscribed", source="preference centre")
    suppression_add(email=RECIPIENT, reason="inactive", source="sunset policy")

    handoff_notice(RECIPIENT)

    assert [message.to for message in mail.outbox] == [[RECIPIENT]]


def test_the_system_path_stops_what_the_gate_stops_for_transactional_mail():
    assert SYSTEM_MAIL_BLOCKING == TRANSACTIONAL_BLOCKING


def test_a_complaint_about_a_staff_notice_suppresses_that_staff_address(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    lead = ContactFactory(email="lead@example.com")
    handoff = HandoffFactory(contact=lead, owner=UserFactory(email="seller@nextstep.test"))
    handoff_notify_owner(handoff_id=handoff.pk)
    row = OutboundMessage.objects.get()
    complaint = payload(
        "postmark_complaint.json",
        email="seller@nextstep.test",
        uuid=row.uuid,
        message_id=row.esp_message_id,
    )

    assert post_postmark(client, complaint).status_code == 200
    esp_events_process()

    event = EspEvent.objects.get()
    assert (event.message, event.outcome) == (row, "processed")
    assert Suppression.objects.filter(
        email_hash=email_hash("seller@nextstep.test"), reason="complaint"
    ).exists()
    # The lead the notice was about is untouched: no complaint is credited to them.
    assert not Suppression.objects.filter(email_hash=email_hash(lead.email)).exists()
    assert not lead.activities.filter(kind="email_complained").exists()


def test_a_redelivered_alert_task_mails_each_owner_once():
    SequenceFactory(status=Sequence.Status.ACTIVE, owner=UserFactory(email="owner@example.com"))
    trip = CircuitBreakerTripFactory()

    first = breaker_alert_send(trip=trip)
    again = breaker_alert_send(trip=trip)

    assert (first, again) == ("alerted 1 sent", "alerted 1 duplicate")
    assert len(mail.outbox) == 1
    assert OutboundMessage.objects.get().idempotency_key == f"trip:{trip.pk}"


@pytest.fixture
def scripted_esp(settings):
    settings.EMAIL_BACKEND = "tests.sequences.backends.ScriptedBackend"
    backends.SCRIPT.clear()
    yield backends
    backends.SCRIPT.clear()


def test_an_owner_without_a_valid_address_does_not_keep_the_alert_from_the_others():
    SequenceFactory(status=Sequence.Status.ACTIVE, owner=UserFactory(email="owner@example.com"))
    SequenceFactory(status=Sequence.Status.ACTIVE, owner=UserFactory(email="not-an-address"))

    outcome = breaker_alert_send(trip=CircuitBreakerTripFactory())

    assert outcome == "alerted 1 invalid address, 1 sent"
    assert [message.to for message in mail.outbox] == [["owner@example.com"]]


def test_a_refused_handoff_notice_rolls_back_its_claim_and_its_ledger_row(scripted_esp):
    scripted_esp.SCRIPT["seller@nextstep.test"] = ["503"]
    handoff = HandoffFactory(owner=UserFactory(email="seller@nextstep.test"))

    with pytest.raises(system_mail.SystemEmailFailed):
        handoff_notify_owner(handoff_id=handoff.pk)
    retried = handoff_notify_owner(handoff_id=handoff.pk)

    handoff.refresh_from_db()
    assert retried == "sent" and handoff.notified_at is not None
    assert list(OutboundMessage.objects.values_list("state", flat=True)) == ["sent"]


def test_a_failed_alert_is_visible_on_the_ledger_and_retried_by_the_next_run(scripted_esp):
    scripted_esp.SCRIPT["owner@example.com"] = ["refuse"]
    SequenceFactory(status=Sequence.Status.ACTIVE, owner=UserFactory(email="owner@example.com"))
    trip = CircuitBreakerTripFactory()

    with pytest.raises(system_mail.SystemEmailFailed):
        breaker_alert_send(trip=trip)
    failed = OutboundMessage.objects.get()
    retried = breaker_alert_send(trip=trip)

    assert failed.state == "failed" and "refused" in failed.reason
    assert retried == "alerted 1 sent"
    row = OutboundMessage.objects.get()
    assert (row.pk, row.state, row.attempts) == (failed.pk, "sent", 2)


def test_without_a_registered_sender_a_system_email_fails_loudly(monkeypatch):
    monkeypatch.setattr(system_mail, "_sender", [])

    with pytest.raises(SystemEmailNotConfigured):
        system_email_send(to=RECIPIENT, subject="s", body="b", kind="handoff_notice")

    assert [error.id for error in check_system_email_sender()] == ["nextstep.E020"]
    assert mail.outbox == []


def test_an_unknown_kind_or_a_bad_address_is_refused():
    with pytest.raises(ValueError, match="Unknown system email kind"):
        system_email_send(to=RECIPIENT, subject="s", body="b", kind="newsletter")
    with pytest.raises(ValidationError, match="valid recipient"):
        system_email_send(to="not an address", subject="s", body="b", kind="handoff_notice")


# --- Nothing else talks to the mail API -----------------------------------------------------

#: The one path: sequence steps (sending.py, with running.py's connection) and system email.
MAIL_API_ALLOWED = {
    "sequences/services/sending.py",
    "sequences/services/running.py",
    "sequences/services/system_mail.py",
    # An email *backend* for `manage.py bench` (it receives messages, never sends them).
    "config/bench/mail.py",
    # seed_demo's simulated ESP (a backend), and the demo replay that hands the engine a
    # connection to it: the engine (running.py, sending.py) still does every send.
    "sequences/esp/simulated.py",
    "sequences/demo_journeys.py",
}
MAIL_MODULES = ("django.core.mail", "anymail.message", "anymail.backends", "smtplib")
MAIL_CALLS = {"send_mail", "send_mass_mail", "mail_admins", "mail_managers", "send_messages"}


def _mail_api_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and node.attr in MAIL_CALLS:
            names = [node.attr]
        else:
            continue
        for name in names:
            if name in MAIL_CALLS or name.startswith(MAIL_MODULES):
                found.append(f"line {node.lineno}: {name}")
    return found


def test_no_module_outside_the_one_path_sends_email_itself():
    offenders = {}
    for app in ("config", "crm", "scoring", "sequences"):
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative in MAIL_API_ALLOWED:
                continue
            if uses := _mail_api_uses(path):
                offenders[relative] = uses

    assert offenders == {}, "send through crm.services.mail.system_email_send instead"


def test_the_scan_would_catch_a_direct_send(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from django.core.mail import send_mail\n"
        "from django.core import mail\n"
        "connection.send_messages([message])\n"
    )

    assert len(_mail_api_uses(sample)) == 4


def test_django_mails_no_admins_or_managers_behind_the_ledger():
    # Django's own error mails (AdminEmailHandler, BrokenLinkEmailsMiddleware) would bypass
    # the ledger and the suppressions; they stay off while these lists are empty.
    assert settings.ADMINS == [] and settings.MANAGERS == []
