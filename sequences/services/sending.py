"""Sending one email step: gate, ledger claim, ESP call, result — never twice.

1. email_prepare (in the enrollment's transaction): the send gate decides; on allow
   the (enrollment, step) ledger row is created as `claimed` — the unique constraint
   makes that the one and only claim — and committed before the ESP is called.
2. email_deliver (no transaction): one AnymailMessage to one recipient, so one
   recipient's rejection can never touch another's message.
3. email_record: sent (with the ESP message id), retry later (a 429/5xx, or the ESP
   certainly never got it: connection refused, connect timeout, an error before the
   request; bounded backoff), failed (permanent, or retries exhausted) or unknown (the
   request may have reached the ESP: never resent automatically; outcomes.py decides).
A row left `claimed` past the lease (a crash mid-send) becomes `unknown`, never resent.
An enrollment whose email is `unknown` waits on that step until the row is resolved
(ledger.py: a webhook, the ESP's API or staff): sent → it goes on; failed → it follows
the sequence's `on_send_failure`.
"""

import datetime
import random
from dataclasses import dataclass
from urllib.parse import urlsplit

from anymail.message import AnymailMessage
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from crm.models import Activity
from crm.services import activity_record, task_create
from sequences.conditions import contact_facts
from sequences.gate import evaluate
from sequences.links import unsubscribe_mailto, unsubscribe_url
from sequences.models import EmailTemplate, Enrollment, OutboundMessage, Sequence
from sequences.rendering import RenderedEmail, UnsafeTemplate, postal_address, render_email
from sequences.services.enrollments import (
    audience_admits,
    audience_segment_admits,
    enrollment_event_add,
)
from sequences.services.ledger import ledger_mark_unknown
from sequences.services.moves import Move, lease_length
from sequences.services.outcomes import RETRIED, SENT, UNKNOWN, Delivery, delivery_from_error
from sequences.services.variants import variant_for

__all__ = ["Delivery", "email_deliver", "email_prepare", "email_record"]

Row = OutboundMessage.State
State = Enrollment.State
MAX_SEND_ATTEMPTS = 5
DEFAULT_RETRY_BASE_SECONDS = 60
#: An enrollment waiting on an `unknown` email looks again this often; resolving the
#: row (ledger.py) wakes it at once.
UNKNOWN_RECHECK = datetime.timedelta(hours=6)
#: Gate reasons that skip this email and go on (the rest mean "this contact must not get
#: this sequence's mail": leave it). A held-out contact walks the whole sequence unmailed,
#: so its goals and exits compare with the mailed group's (docs/reporting.md).
DEFER_OR_CONTINUE = frozenset(
    {"frequency_cap", "low_engagement_throttle", "quiet_hours", "holdout"}
)


@dataclass(frozen=True)
class Prepared:
    row: OutboundMessage
    message: AnymailMessage
    enrollment: Enrollment
    step: dict


def email_prepare(enrollment: Enrollment, step: dict, now: datetime.datetime):
    """Decide and claim: return Prepared to send, or a Move when nothing is to be sent now."""
    row = OutboundMessage.objects.filter(enrollment=enrollment, step=step["key"]).first()
    if row is not None and row.state != Row.RETRY:
        return _existing_row_move(enrollment, row, now)
    if row is not None and row.next_attempt_at and row.next_attempt_at > now:
        return Move.hold(row.next_attempt_at, "retry_wait", row.reason)
    contact, sequence = enrollment.contact, enrollment.sequence
    if not audience_admits(sequence, contact_facts(contact)) or not audience_segment_admits(
        sequence, contact.pk
    ):
        return Move.end(State.EXITED, "audience_left")
    decision = evaluate(contact, sequence, step, now)
    if not decision.allowed:
        return _denied_move(enrollment, step, row, decision, now)
    variant = variant_for(enrollment, step, pinned=row.variant if row else "")
    template = _template_for(step, variant)
    if template is None:
        return _failure_move(enrollment, step, row, "template_missing", now)
    try:
        rendered = render_email(template, email_context(enrollment, template))
    except UnsafeTemplate as exc:
        return _failure_move(enrollment, step, row, f"render_error: {exc}", now)
    if rendered.missing:
        reason = "missing_data:" + ",".join(rendered.missing)
        return _failure_move(enrollment, step, row, reason, now)
    claimed = _claim(enrollment, step, template, row, now, variant)
    if claimed is None:
        return Move.hold(now + lease_length(), "sending_elsewhere")
    message = email_message(enrollment, claimed, rendered)
    return Prepared(row=claimed, message=message, enrollment=enrollment, step=step)


def _template_for(step: dict, variant: dict | None) -> EmailTemplate | None:
    if variant is not None:
        return EmailTemplate.objects.filter(key=variant["template"]).first()
    return EmailTemplate.objects.filter(pk=step.get("template_id")).first()


def _existing_row_move(enrollment: Enrollment, row: OutboundMessage, now) -> Move:
    """The step was attempted before (a re-run after a crash or a resume): never send again."""
    lease = lease_length()
    if row.state == Row.CLAIMED and row.claimed_at and row.claimed_at + lease > now:
        return Move.hold(row.claimed_at + lease, "sending_elsewhere")
    if row.state == Row.CLAIMED:
        reason = "crashed while sending; not resent"
        ledger_mark_unknown(rows=OutboundMessage.objects.filter(pk=row.pk, state=Row.CLAIMED))
        return Move.hold(now + UNKNOWN_RECHECK, "unknown", reason)
    if row.state == Row.UNKNOWN:
        # Not as if sent: wait for the reconciliation (webhook, ESP lookup or staff).
        return Move.hold(now + UNKNOWN_RECHECK, "awaiting_reconciliation", row.reason)
    if row.state == Row.FAILED:
        return _on_failure(enrollment, row.reason)
    return Move(event="already_" + row.state, reason=row.reason)


def _denied_move(enrollment, step, row, decision, now) -> Move:
    if decision.defer_until is not None:
        return Move.hold(decision.defer_until, "deferred", decision.reason)
    _close(enrollment, step, row, Row.SKIPPED, decision.reason, now)
    if decision.reason in DEFER_OR_CONTINUE:
        return Move(event="skipped", reason=decision.reason)
    # Suppression and consent denials mean this contact must not get this sequence: leave it.
    enrollment_event_add(
        enrollment=enrollment, kind="denied", step=step["key"], reason=decision.reason, now=now
    )
    return Move.end(State.EXITED, f"denied:{decision.reason}")


def _failure_move(enrollment, step, row, reason: str, now) -> Move:
    _close(enrollment, step, row, Row.SKIPPED, reason, now)
    return _on_failure(enrollment, reason)


def _on_failure(enrollment: Enrollment, reason: str) -> Move:
    """Follow the sequence's failure path for an email that could not go out."""
    policy = enrollment.sequence.on_send_failure
    if policy == Sequence.OnSendFailure.EXIT or not policy:
        return Move.end(State.FAILED, reason)
    if policy == Sequence.OnSendFailure.NOTIFY_OWNER:
        task_create(
            title=f"Email not sent ({enrollment.sequence.name}): {reason}"[:200],
            contact=enrollment.contact,
            owner=enrollment.contact.owner or enrollment.sequence.owner,
            source=f"sequence:{enrollment.sequence.key}",
        )
    return Move(event="send_failed", reason=reason)


def _close(enrollment, step, row, state: str, reason: str, now) -> None:
    """Write a terminal ledger row for a step that sends nothing (skip with reason)."""
    if row is not None:
        OutboundMessage.objects.filter(pk=row.pk).update(state=state, reason=reason[:300])
        return
    try:
        with transaction.atomic():
            OutboundMessage.objects.create(
                enrollment=enrollment,
                step=step["key"],
                contact=enrollment.contact,
                template_id=step.get("template_id"),
                is_marketing=not enrollment.sequence.is_transactional,
                state=state,
                reason=reason[:300],
                created_at=now,
            )
    except IntegrityError:
        pass  # a row exists: the step was handled already


def _claim(enrollment, step, template, row, now, variant) -> OutboundMessage | None:
    """Claim the ledger row for this (enrollment, step); None if someone else holds it."""
    # claimed_at is the real time of the claim: the lease that makes a stale claim
    # `unknown` must count from when the ESP call could have started, not a batch's `now`.
    if row is not None:
        claimed = OutboundMessage.objects.filter(pk=row.pk, state=Row.RETRY).update(
            state=Row.CLAIMED, attempts=F("attempts") + 1, claimed_at=timezone.now()
        )
        return OutboundMessage.objects.get(pk=row.pk) if claimed else None
    try:
        with transaction.atomic():
            return OutboundMessage.objects.create(
                enrollment=enrollment,
                step=step["key"],
                contact=enrollment.contact,
                template=template,
                variant=variant["key"] if variant else "",
                is_marketing=not enrollment.sequence.is_transactional,
                state=Row.CLAIMED,
                attempts=1,
                claimed_at=timezone.now(),
                created_at=now,
            )
    except IntegrityError:
        return None


# --- The message ----------------------------------------------------------------------------


def email_context(enrollment: Enrollment, template: EmailTemplate) -> dict:
    """Plain data for the restricted engine: no model instance ever reaches a template."""
    contact, sequence = enrollment.contact, enrollment.sequence
    facts = contact_facts(contact)
    owner = contact.owner or sequence.owner
    unsubscribe = unsubscribe_url(contact, sequence.topic)
    return {
        "contact": {**facts, "full_name": contact.full_name},
        "company": facts["company"],
        "owner": {
            "name": owner.get_full_name() if owner else "",
            "first_name": owner.first_name if owner else "",
            "email": owner.email if owner else "",
        },
        "trigger": dict(enrollment.trigger_properties or {}),
        "links": {"unsubscribe_url": unsubscribe, "cta_url": template.cta_url},
        "unsubscribe_url": unsubscribe,
        "postal_address": postal_address(),
        "cta_url": template.cta_url,
        "cta_label": template.cta_label,
    }


def email_message(enrollment: Enrollment, row: OutboundMessage, rendered: RenderedEmail):
    """One AnymailMessage to one recipient, with opaque ids only in its metadata."""
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[enrollment.contact.email],
    )
    message.attach_alternative(rendered.html, "text/html")
    message.metadata = {
        "message_uuid": str(row.uuid),
        "enrollment_id": str(enrollment.pk),
        "step": row.step,
    }
    if not enrollment.sequence.is_transactional:
        message.extra_headers = marketing_headers(enrollment)
    return message


def marketing_headers(enrollment: Enrollment) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe (one HTTPS URL, optional mailto) and a List-Id per topic."""
    topic = enrollment.sequence.topic
    targets = [f"<{unsubscribe_url(enrollment.contact, topic)}>"]
    mailto = unsubscribe_mailto()
    if mailto:
        targets.append(f"<{mailto}>")
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{topic.name} <{topic.key}.{host}>",
    }


# --- Delivery and its result ----------------------------------------------------------------


def email_deliver(prepared: Prepared, mail_connection) -> Delivery:
    """Hand the message to the ESP and classify the answer (outcomes.py)."""
    message = prepared.message
    message.connection = mail_connection
    try:
        message.send()
    except Exception as exc:
        return delivery_from_error(exc, message)
    return _recipient_result(message)


def _recipient_result(message: AnymailMessage) -> Delivery:
    status = message.anymail_status
    recipient = status.recipients.get(message.to[0]) if status else None
    if recipient is not None and recipient.status in ("rejected", "invalid", "failed"):
        return Delivery("permanent", reason=f"ESP {recipient.status}")
    message_id = recipient.message_id if recipient else None
    if message_id is None and status is not None:
        message_id = status.message_id
    return Delivery("sent", esp_message_id="" if message_id is None else str(message_id))


def email_record(prepared: Prepared, delivery: Delivery, now: datetime.datetime) -> Move:
    """Store the ESP's answer on the ledger row and say where the enrollment goes."""
    row = OutboundMessage.objects.filter(pk=prepared.row.pk, state__in=[Row.CLAIMED, Row.UNKNOWN])
    if delivery.status == SENT:
        row.update(state=Row.SENT, esp_message_id=delivery.esp_message_id[:200], sent_at=now)
        _record_sent_activity(prepared, now)
        return Move(event="sent", reason=f"message {prepared.row.uuid}")
    if delivery.status == UNKNOWN:
        ledger_mark_unknown(rows=row, reason=delivery.reason)
        return Move.hold(now + UNKNOWN_RECHECK, "unknown", delivery.reason)
    attempts = prepared.row.attempts
    if delivery.status in RETRIED and attempts < MAX_SEND_ATTEMPTS:
        retry_at = now + retry_delay(attempts)
        row.update(state=Row.RETRY, reason=delivery.reason[:300], next_attempt_at=retry_at)
        return Move.hold(retry_at, "retry", delivery.reason)
    reason = (
        delivery.reason
        if delivery.status == "permanent"
        else (f"gave up after {attempts} attempts: {delivery.reason}")
    )
    row.update(state=Row.FAILED, reason=reason[:300], next_attempt_at=None)
    return _on_failure(prepared.enrollment, reason)


def retry_delay(attempts: int) -> datetime.timedelta:
    """Exponential backoff with jitter: about 1, 2, 4, 8 minutes (SEQUENCES_RETRY_BASE_SECONDS)."""
    base_seconds = getattr(settings, "SEQUENCES_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS)
    delay = base_seconds * (2 ** max(attempts - 1, 0))
    return datetime.timedelta(seconds=delay + random.uniform(0, base_seconds / 2))


def _record_sent_activity(prepared: Prepared, now: datetime.datetime) -> None:
    enrollment = prepared.enrollment
    activity_record(
        kind=Activity.Kind.EMAIL_SENT,
        source="sequences",
        contact=enrollment.contact,
        occurred_at=now,
        properties={
            "message_uuid": str(prepared.row.uuid),
            "sequence": enrollment.sequence.key,
            "step": prepared.step["key"],
            "template": prepared.step.get("template_key", ""),
        },
        idempotency_key=f"outbound:{prepared.row.uuid}",
    )
