"""Process stored ESP events in batches: idempotent, in any order, never lost.

Each event is classified when stored (classify.py); here it acts:
delivered/opened/clicked → activities; hard bounce → suppression of that one
recipient; soft bounces → a temporary suppression after N within M days; complaint →
permanent suppression and consent withdrawn for every topic; unsubscribed → consent
withdrawn (and suppression when it covers all mail); rejected/failed → the ledger row
fails. Suppressions are sticky: no later event lifts one.

Any event proving the ESP had a message (sent, delivered, bounced, opened, ...) resolves
its `unknown` ledger row as sent; a rejection resolves it as failed. Either wakes the
enrollment waiting on that email (sequences/services/ledger.py).
"""

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crm.emails import normalise_email
from crm.models import Activity, ConsentTopic, Contact, Suppression
from crm.services import ActivityInput, activity_record_batch, consent_withdraw, suppression_add
from sequences.esp.classify import is_machine_open, unsubscribe_covers_all
from sequences.models import EspEvent, OutboundMessage
from sequences.privacy import esp_events_forget_erased
from sequences.services.ledger import outbound_reconcile

logger = logging.getLogger(__name__)
Kind = EspEvent.Kind
Outcome = EspEvent.Outcome
BATCH_SIZE = 500
ACTIVITY_KINDS = {
    Kind.DELIVERED: Activity.Kind.EMAIL_DELIVERED,
    Kind.OPENED: Activity.Kind.EMAIL_OPENED,
    Kind.CLICKED: Activity.Kind.EMAIL_CLICKED,
    Kind.HARD_BOUNCE: Activity.Kind.EMAIL_BOUNCED,
    Kind.SOFT_BOUNCE: Activity.Kind.EMAIL_BOUNCED,
    Kind.COMPLAINT: Activity.Kind.EMAIL_COMPLAINED,
    Kind.UNSUBSCRIBED: Activity.Kind.UNSUBSCRIBED,
}
#: Kinds that are about delivery state only, so there is nothing to do for them.
NO_ACTION = frozenset({Kind.DEFERRED, Kind.IGNORED, Kind.PENDING})
#: Kinds, and anymail event types, that prove the ESP received the message.
RECEIVED_KINDS = frozenset(
    {
        Kind.DELIVERED,
        Kind.OPENED,
        Kind.CLICKED,
        Kind.HARD_BOUNCE,
        Kind.SOFT_BOUNCE,
        Kind.DEFERRED,
        Kind.COMPLAINT,
        Kind.UNSUBSCRIBED,
    }
)
RECEIVED_EVENT_TYPES = frozenset({"queued", "sent"})


@dataclass
class Batch:
    now: datetime.datetime
    contacts: dict[str, Contact]
    activities: list[ActivityInput] = field(default_factory=list)


def esp_events_process(*, limit: int = BATCH_SIZE) -> int:
    """Process up to `limit` pending events, oldest first; return how many were handled."""
    with transaction.atomic():
        events = list(
            EspEvent.objects.select_for_update(skip_locked=True)
            .filter(outcome=Outcome.PENDING)
            .order_by("occurred_at", "pk")[:limit]
        )
        if not events:
            return 0
        _attach_ledger_rows(events)
        batch = Batch(now=timezone.now(), contacts=_contacts_for(events))
        for event in events:
            _process_safely(event, batch)
        activity_record_batch(items=batch.activities)
        EspEvent.objects.bulk_update(
            events, ["message", "outcome", "reason", "processed_at"], batch_size=BATCH_SIZE
        )
        esp_events_forget_erased(events)
    return len(events)


def _attach_ledger_rows(events: list[EspEvent]) -> None:
    """Match events to the send ledger: our message uuid in metadata, else the ESP's id.

    SendGrid events carry no message id in anymail 15.2, so the metadata is the key.
    """
    uuids = {_message_uuid(event) for event in events} - {""}
    esp_ids = {event.esp_message_id for event in events if event.esp_message_id}
    by_uuid = {str(row.uuid): row for row in OutboundMessage.objects.filter(uuid__in=uuids)}
    ledger = OutboundMessage.objects.filter(esp_message_id__in=esp_ids)
    by_esp_id = {row.esp_message_id: row for row in ledger}
    for event in events:
        event.message = by_uuid.get(_message_uuid(event)) or by_esp_id.get(event.esp_message_id)


def _message_uuid(event: EspEvent) -> str:
    value = str((event.metadata or {}).get("message_uuid", ""))
    return value if len(value) == 36 else ""


def _contacts_for(events: list[EspEvent]) -> dict[str, Contact]:
    """Contacts by normalised address; the ledger row's contact wins when there is one."""
    emails = {normalise_email(event.recipient) for event in events if event.recipient}
    contacts = {contact.email: contact for contact in Contact.objects.filter(email__in=emails)}
    # A system email to staff has no contact: its events belong to no contact.
    ledger_contacts = Contact.objects.in_bulk(
        {event.message.contact_id for event in events if event.message and event.message.contact_id}
    )
    for event in events:
        if event.message and event.message.contact_id and event.recipient:
            contacts[normalise_email(event.recipient)] = ledger_contacts[event.message.contact_id]
    return contacts


def _process_safely(event: EspEvent, batch: Batch) -> None:
    """One event's effects in a savepoint; a failure is recorded on the event, visibly."""
    event.processed_at = batch.now
    recorded = len(batch.activities)
    try:
        with transaction.atomic():
            _process(event, batch)
    except Exception as exc:
        del batch.activities[recorded:]
        logger.exception("ESP event %s could not be processed", event.pk)
        event.outcome, event.reason = Outcome.FAILED, f"{type(exc).__name__}: {exc}"[:300]
        return
    if event.message is None and event.kind not in NO_ACTION:
        event.outcome = Outcome.UNKNOWN_MESSAGE
        event.reason = event.reason or "no ledger row matches this event's message"
    else:
        event.outcome = Outcome.PROCESSED


def _process(event: EspEvent, batch: Batch) -> None:
    contact = batch.contacts.get(normalise_email(event.recipient)) if event.recipient else None
    _reconcile_unknown(event)
    ACTIONS.get(event.kind, _nothing)(event, contact, batch)
    if event.kind in ACTIVITY_KINDS and contact is not None:
        batch.activities.append(_activity(event, contact))
    elif event.kind in ACTIVITY_KINDS:
        event.reason = "no contact with this address"


def _activity(event: EspEvent, contact: Contact) -> ActivityInput:
    properties = {"esp": event.esp, "event_type": event.event_type, "kind": event.kind}
    if event.message is not None:
        properties["message_uuid"] = str(event.message.uuid)
    if event.click_url:
        properties["url"] = event.click_url
    if event.kind == Kind.OPENED:
        properties["is_machine_open"] = is_machine_open(event.user_agent, event.raw)
    return ActivityInput(
        kind=ACTIVITY_KINDS[event.kind],
        source=f"esp:{event.esp}",
        contact_id=contact.pk,
        occurred_at=event.occurred_at,
        properties=properties,
        idempotency_key=event.event_key,
    )


def _nothing(event, contact, batch) -> None:
    return None


def _reconcile_unknown(event: EspEvent) -> None:
    """An event about an `unknown` message settles it: the ESP had it (or refused it)."""
    message = event.message
    if message is None or message.state != OutboundMessage.State.UNKNOWN:
        return
    if event.kind in RECEIVED_KINDS or event.event_type in RECEIVED_EVENT_TYPES:
        state = OutboundMessage.State.SENT
    elif event.kind == Kind.FAILED:
        state = OutboundMessage.State.FAILED
    else:
        return
    evidence = f"{event.esp} {event.event_type} event {event.event_id or event.pk}".strip()
    if state == OutboundMessage.State.FAILED and event.description:
        evidence += f": {event.description}"
    outbound_reconcile(
        message=message,
        state=state,
        evidence=evidence,
        resolution=OutboundMessage.Resolution.WEBHOOK,
        esp_message_id=event.esp_message_id,
        at=event.occurred_at if state == OutboundMessage.State.SENT else None,
    )
    message.refresh_from_db(fields=["state"])


def _hard_bounce(event: EspEvent, contact, batch: Batch) -> None:
    _suppress(event, Suppression.Reason.HARD_BOUNCE)


def _soft_bounce(event: EspEvent, contact, batch: Batch) -> None:
    """N soft bounces on distinct messages within M days → a temporary suppression."""
    if _soft_bounce_limit_reached(event):
        cooldown = datetime.timedelta(days=settings.DELIVERABILITY_SOFT_BOUNCE_COOLDOWN_DAYS)
        _suppress(event, Suppression.Reason.SOFT_BOUNCE, expires_at=batch.now + cooldown)


def _soft_bounce_limit_reached(event: EspEvent) -> bool:
    """Does any M-day window holding this bounce hold N bounced messages?

    Windows ending after the event count too: a late, older bounce may complete a window
    whose newer bounces were processed first (events arrive in any order).
    """
    span = datetime.timedelta(days=settings.DELIVERABILITY_SOFT_BOUNCE_DAYS)
    bounces = list(
        EspEvent.objects.filter(
            esp=event.esp,
            recipient=event.recipient,
            kind=Kind.SOFT_BOUNCE,
            occurred_at__gt=event.occurred_at - span,
            occurred_at__lt=event.occurred_at + span,
        ).values_list("occurred_at", "message_key")
    )
    window_ends = [at for at, _ in bounces if at >= event.occurred_at]
    return any(
        len({key for at, key in bounces if end - span < at <= end})
        >= settings.DELIVERABILITY_SOFT_BOUNCE_LIMIT
        for end in window_ends
    )


def _complaint(event: EspEvent, contact, batch: Batch) -> None:
    _suppress(event, Suppression.Reason.COMPLAINT)
    if contact is not None:
        _withdraw(contact, ConsentTopic.objects.all(), event)


def _unsubscribed(event: EspEvent, contact, batch: Batch) -> None:
    covers_all = unsubscribe_covers_all(event.esp, event.raw)
    topic = _message_topic(event)
    if contact is not None:
        topics = ConsentTopic.objects.filter(pk=topic.pk) if topic and not covers_all else None
        _withdraw(contact, topics if topics is not None else ConsentTopic.objects.all(), event)
    if covers_all:
        _suppress(event, Suppression.Reason.UNSUBSCRIBED)


def _failed(event: EspEvent, contact, batch: Batch) -> None:
    if event.message is None:
        return
    reason = f"ESP {event.event_type}: {event.description}".strip(": ")[:300]
    OutboundMessage.objects.filter(
        pk=event.message.pk, state__in=[OutboundMessage.State.SENT, OutboundMessage.State.UNKNOWN]
    ).update(state=OutboundMessage.State.FAILED, reason=reason)


def _suppress(event: EspEvent, reason: str, expires_at=None) -> None:
    if not event.recipient:
        event.reason = "no recipient: nothing to suppress"
        return
    suppression_add(
        email=event.recipient,
        reason=reason,
        source=f"esp:{event.esp}",
        detail=event.description,
        expires_at=expires_at,
    )


def _withdraw(contact: Contact, topics, event: EspEvent) -> None:
    for topic in topics:
        consent_withdraw(
            contact=contact,
            topic=topic,
            method="esp",
            source=f"esp:{event.esp}",
            occurred_at=event.occurred_at,
        )


def _message_topic(event: EspEvent) -> ConsentTopic | None:
    if event.message is None or event.message.enrollment_id is None:
        return None  # a system email (a confirmation, a staff notice) has no topic
    return event.message.enrollment.sequence.topic


ACTIONS: dict[str, Callable[[EspEvent, Contact | None, Batch], None]] = {
    Kind.HARD_BOUNCE: _hard_bounce,
    Kind.SOFT_BOUNCE: _soft_bounce,
    Kind.COMPLAINT: _complaint,
    Kind.UNSUBSCRIBED: _unsubscribed,
    Kind.FAILED: _failed,
}
