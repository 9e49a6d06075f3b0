"""The send ledger's `unknown` rows: marking, reconciling, resolving, alerting.

`unknown` means the request may have reached the ESP and we have no answer. Such a row
is never resent automatically, and its enrollment waits on the step (sending.py). It
is resolved by evidence, in this order of preference:

- a webhook event of that message proving the ESP had it (delivered, bounced, opened,
  ...) → `sent`; a rejection event → `failed` (esp/processing.py);
- the ESP's own API, where anymail's ESP offers a lookup by our metadata (esp/reconcile.py);
- staff, with a reason: sent, failed, or "the ESP did not get it" (resend).

Resolving wakes the waiting enrollment: sent → it goes on; failed → it follows the
sequence's `on_send_failure`; resend → the step is tried again (bounded attempts).
"""

import datetime
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crm.models import Activity
from crm.services import activity_record
from sequences.models import Enrollment, OutboundMessage, UnknownMessagesAlert
from sequences.services.enrollments import enrollment_event_add
from sequences.services.moves import lease_length

logger = logging.getLogger(__name__)
Row = OutboundMessage.State
Resolution = OutboundMessage.Resolution
STALE_REASON = "no result recorded within the lease; not resent"
NEVER_HANDED_REASON = "claimed, never handed to the ESP; its enrollment left the step"
DEFAULT_UNKNOWN_ALERT_THRESHOLD = 10


def ledger_mark_unknown(*, rows, reason: str = STALE_REASON) -> int:
    """Mark ledger rows `unknown`: the ESP may have the message; never resent automatically."""
    return rows.update(state=Row.UNKNOWN, reason=reason[:300])


def ledger_mark_stale_unknown(*, now: datetime.datetime) -> int:
    """Rows claimed longer ago than the lease crashed mid-send: mark them unknown.

    Only rows handed to the ESP have `claimed_at` (sending.emails_deliver). A row claimed
    but never handed over is claimed again when its enrollment runs; if the enrollment
    has left that step meanwhile, nothing will, so it is closed as skipped: never sent.
    """
    # Every run calls this and there is almost never anything to mark: look first, since
    # an UPDATE takes the write lock even when it changes nothing (SQLite's one writer:
    # with several workers, these two empty UPDATEs per run queued behind every batch).
    stale = OutboundMessage.objects.filter(state=Row.CLAIMED, claimed_at__lt=now - lease_length())
    marked = ledger_mark_unknown(rows=stale) if stale.exists() else 0
    never_handed = OutboundMessage.objects.filter(
        state=Row.CLAIMED,
        claimed_at__isnull=True,
        enrollment__isnull=False,
        created_at__lt=now - lease_length(),
    ).exclude(enrollment__state__in=Enrollment.LIVE_STATES, enrollment__current_step=F("step"))
    if never_handed.exists():
        never_handed.update(state=Row.SKIPPED, reason=NEVER_HANDED_REASON)
    return marked


def outbound_reconcile(
    *,
    message: OutboundMessage,
    state: str,
    evidence: str,
    resolution: str,
    esp_message_id: str = "",
    at: datetime.datetime | None = None,
) -> bool:
    """Resolve an `unknown` row as sent or failed on the ESP's evidence; False if not unknown."""
    now = timezone.now()
    fields = {
        "state": state,
        "reason": f"{Row(state).label.lower()}: {evidence}"[:300],
        "resolution": resolution,
        "resolved_at": now,
        "resolution_note": evidence[:300],
    }
    if state == Row.SENT:
        fields["sent_at"] = at or now
        if esp_message_id:
            fields["esp_message_id"] = esp_message_id[:200]
    with transaction.atomic():
        changed = OutboundMessage.objects.filter(pk=message.pk, state=Row.UNKNOWN).update(**fields)
        if not changed:
            return False
        if state == Row.SENT:
            _record_sent(message, at or now)
        _wake(message, kind=f"reconciled_{state}", reason=evidence, now=now)
    return True


@transaction.atomic
def outbound_resolve(*, message: OutboundMessage, resolution: str, note: str, user) -> None:
    """Staff resolve an `unknown` row with a reason (audited on the row and the history)."""
    note = (note or "").strip()
    if not note:
        raise ValidationError("Say why: the reason is kept with the message.")
    if resolution not in (Resolution.STAFF_SENT, Resolution.STAFF_FAILED, Resolution.STAFF_RESEND):
        raise ValidationError(f"Unknown resolution {resolution!r}.")
    locked = OutboundMessage.objects.select_for_update().get(pk=message.pk)
    if locked.state != Row.UNKNOWN:
        raise ValidationError(f"Message {locked.uuid} is {locked.state}, not unknown.")
    if resolution == Resolution.STAFF_RESEND and not _waiting_enrollment(locked).exists():
        raise ValidationError(
            f"Message {locked.uuid}: its enrollment no longer waits on this step, so it "
            "cannot be resent. Resolve it as sent or failed."
        )
    now = timezone.now()
    state = {
        Resolution.STAFF_SENT: Row.SENT,
        Resolution.STAFF_FAILED: Row.FAILED,
        Resolution.STAFF_RESEND: Row.RETRY,
    }[resolution]
    who = getattr(user, "username", "") or "staff"
    fields = {
        "state": state,
        "reason": f"{Resolution(resolution).label} by {who}: {note}"[:300],
        "resolution": resolution,
        "resolved_at": now,
        "resolved_by": user,
        "resolution_note": note[:300],
    }
    if state == Row.SENT:
        fields["sent_at"] = now
    if state == Row.RETRY:
        fields["next_attempt_at"] = now
    OutboundMessage.objects.filter(pk=locked.pk).update(**fields)
    if state == Row.SENT:
        _record_sent(locked, now)
    _wake(locked, kind=f"resolved_{resolution}", reason=f"{who}: {note}", now=now)


def _waiting_enrollment(message: OutboundMessage):
    return Enrollment.objects.filter(
        pk=message.enrollment_id, state__in=Enrollment.LIVE_STATES, current_step=message.step
    )


def _wake(message: OutboundMessage, *, kind: str, reason: str, now: datetime.datetime) -> None:
    """Make the enrollment waiting on this message due now, and note why on its history."""
    waiting = _waiting_enrollment(message)
    if waiting.update(due_at=now):
        enrollment_event_add(
            enrollment=waiting.get(), kind=kind, step=message.step, reason=reason, now=now
        )


def _record_sent(message: OutboundMessage, at: datetime.datetime) -> None:
    # The same idempotency key as a direct send: an email_sent activity exists once.
    activity_record(
        kind=Activity.Kind.EMAIL_SENT,
        source="sequences",
        contact=message.contact,
        occurred_at=at,
        properties={"message_uuid": str(message.uuid), "step": message.step, "reconciled": True},
        idempotency_key=f"outbound:{message.uuid}",
    )


def unknown_messages_check(*, now: datetime.datetime | None = None) -> UnknownMessagesAlert | None:
    """Alert (once a day) when `unknown` rows reach SEQUENCES_UNKNOWN_ALERT_THRESHOLD."""
    now = now or timezone.now()
    threshold = getattr(
        settings, "SEQUENCES_UNKNOWN_ALERT_THRESHOLD", DEFAULT_UNKNOWN_ALERT_THRESHOLD
    )
    count = OutboundMessage.objects.filter(state=Row.UNKNOWN).count()
    if threshold <= 0 or count < threshold:
        return None
    alert, created = UnknownMessagesAlert.objects.get_or_create(
        day=now.date(), defaults={"count": count, "threshold": threshold, "alerted_at": now}
    )
    if not created:
        return None
    logger.warning(
        "%s sequence emails are in the unknown state (threshold %s): resolve them in the "
        "send ledger admin",
        count,
        threshold,
    )
    return alert
