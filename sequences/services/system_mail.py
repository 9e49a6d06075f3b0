"""The system email sender crm.services.mail delegates to (registered in apps.ready()).

Every system email, like every sequence step, gets a send-ledger row: `skipped` with the
suppression's reason when the address must not get mail, else `claimed` before the ESP
is called, then `sent` with the ESP message id, `failed` or `unknown` with the reason.
The message's metadata carries the row's uuid, so webhooks match it like any other send
(and a complaint or hard bounce on a staff address suppresses it like any other).

Called outside a transaction, the claimed row commits before the ESP call, as for
sequence sends. Called inside one (a handoff claim), the row commits with the caller's
work, and a failure raises so both roll back and the caller's next run retries.
"""

import logging

from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from crm.emails import email_hash
from crm.selectors import suppressions_active_for
from crm.services.mail import (
    SYSTEM_MAIL_BLOCKING,
    SystemEmail,
    SystemEmailFailed,
    SystemEmailResult,
)
from sequences.models import OutboundMessage
from sequences.services.sending import Prepared, email_deliver

logger = logging.getLogger(__name__)
Row = OutboundMessage.State


def system_email_deliver(email: SystemEmail) -> SystemEmailResult:
    """Check suppressions, claim a ledger row, hand the message to the ESP, record the answer."""
    now = timezone.now()
    recipient_hash = email_hash(email.to)
    blocking = (
        suppressions_active_for(email=email.to)
        .filter(reason__in=SYSTEM_MAIL_BLOCKING)
        .order_by("reason")
        .values_list("reason", flat=True)
        .first()
    )
    if blocking is not None:
        row = _row_create(email, recipient_hash, now, state=Row.SKIPPED, reason=blocking)
        if row is None:
            return SystemEmailResult(status="duplicate", reason="already handled")
        logger.info("system email %s (%s) not sent: suppressed", row.uuid, email.kind)
        return SystemEmailResult(
            status="suppressed", message_uuid=str(row.uuid), reason=f"suppressed:{blocking}"
        )
    row = _claim(email, recipient_hash, now)
    if row is None:
        return SystemEmailResult(status="duplicate", reason="already sent or being sent")
    message = _message(email, row)
    delivery = email_deliver(
        Prepared(row=row, message=message, enrollment=None, step={}), get_connection()
    )
    return _record(row, delivery, timezone.now())


def _claim(email: SystemEmail, recipient_hash: str, now) -> OutboundMessage | None:
    """A new claimed row; with an idempotency key, a failed earlier attempt is reclaimed."""
    row = _row_create(email, recipient_hash, now, state=Row.CLAIMED, reason="")
    if row is not None or not email.idempotency_key:
        return row
    earlier = OutboundMessage.objects.filter(
        kind=email.kind, idempotency_key=email.idempotency_key, recipient_hash=recipient_hash
    ).first()
    if earlier is None:
        return None
    # The conditional update is the claim: of two retries at once, one wins.
    claimed = OutboundMessage.objects.filter(pk=earlier.pk, state=Row.FAILED).update(
        state=Row.CLAIMED, attempts=F("attempts") + 1, claimed_at=now, reason=""
    )
    return OutboundMessage.objects.get(pk=earlier.pk) if claimed else None


def _row_create(email: SystemEmail, recipient_hash: str, now, *, state: str, reason: str):
    claimed = state == Row.CLAIMED
    try:
        with transaction.atomic():
            return OutboundMessage.objects.create(
                kind=email.kind,
                enrollment=None,
                step="",
                contact=email.contact,
                recipient_hash=recipient_hash,
                idempotency_key=email.idempotency_key[:100],
                is_marketing=False,
                state=state,
                reason=reason[:300],
                attempts=1 if claimed else 0,
                claimed_at=now if claimed else None,
                created_at=now,
            )
    except IntegrityError:
        if not email.idempotency_key:
            raise
        return None  # this (kind, key, recipient) was handled already


def _message(email: SystemEmail, row: OutboundMessage) -> AnymailMessage:
    message = AnymailMessage(
        subject=email.subject,
        body=email.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
    )
    if email.html:
        message.attach_alternative(email.html, "text/html")
    # Ids only: the ESP stores metadata, and logs of it must hold no address or name.
    message.metadata = {**email.metadata, "message_uuid": str(row.uuid), "kind": email.kind}
    message.tags = [email.kind]
    return message


def _record(row: OutboundMessage, delivery, now) -> SystemEmailResult:
    claimed = OutboundMessage.objects.filter(pk=row.pk, state=Row.CLAIMED)
    if delivery.status == "sent":
        claimed.update(state=Row.SENT, esp_message_id=delivery.esp_message_id[:200], sent_at=now)
        return SystemEmailResult(
            status="sent", message_uuid=str(row.uuid), esp_message_id=delivery.esp_message_id
        )
    # An unknown answer may mean it went out: never retried by an idempotency key.
    state = Row.UNKNOWN if delivery.status == "unknown" else Row.FAILED
    reason = delivery.reason
    if delivery.status == "transient":
        reason = f"temporary ESP error: {reason}"
    claimed.update(state=state, reason=reason[:300])
    # The reason stays on the row; ESP error texts may quote the address, so not in logs.
    logger.warning("system email %s (%s) not sent: %s", row.uuid, row.kind, delivery.status)
    raise SystemEmailFailed(reason, message_uuid=str(row.uuid))
