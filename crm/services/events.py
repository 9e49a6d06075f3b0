"""Behaviour sent by websites, apps and servers, recorded as activities."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from django.db import transaction

from crm.models import Activity
from crm.services.activities import ActivityInput, activity_record_batch
from crm.services.contacts import contacts_vouch
from crm.services.identity import PersonRef, contacts_resolve_for_events


class EventStatus(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    #: Untrusted senders only: taken, and what became of it is not disclosed.
    ACCEPTED = "accepted"
    INVALID = "invalid"
    #: The sender's key may not send this event (browser keys: business events).
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class IncomingEvent:
    """One event as the sender described it, already checked for shape and size."""

    kind: str
    person: PersonRef
    occurred_at: datetime.datetime | None = None
    properties: dict = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True)
class EventOutcome:
    status: EventStatus
    activity: Activity | None = None
    contact_id: int | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)


@transaction.atomic
def events_ingest(
    *, events: Sequence[IncomingEvent], source: str, vouched_by: str = ""
) -> list[EventOutcome]:
    """Record a batch of events as activities of `source`; `outcome[i]` is event i's fate.

    Contacts are found or created for the whole batch at once and the activities
    are written in one activity_record_batch call, so the cost in queries does not
    grow with the batch. An event whose person cannot be resolved is reported
    invalid and the others are still recorded.

    `vouched_by` says the sender is trusted (a server key): it may create contacts
    and vouches for every address it names. Without it (a browser key) events only
    attach to contacts that exist, or stay anonymous, and every outcome is
    `accepted`, so the sender learns nothing about who is known.
    """
    trusted = bool(vouched_by)
    resolved = contacts_resolve_for_events(
        people=[event.person for event in events], trusted=trusted
    )
    if trusted:
        contacts_vouch(contact_ids=resolved.named_contact_ids, by=vouched_by)
    recordable = [
        index
        for index in range(len(events))
        if index not in resolved.errors
        # Nobody known and no visitor id: an untrusted sender's event has no one to attach to.
        and (resolved.contact_ids[index] or events[index].person.anonymous_id)
    ]
    items = [
        _activity_input(events[index], resolved.contact_ids[index], source) for index in recordable
    ]
    recorded = activity_record_batch(items=items).activities if items else ()
    # Every event starts invalid with its reasons; the recordable ones are replaced below.
    outcomes = [
        EventOutcome(status=EventStatus.INVALID, errors=resolved.errors.get(index, {}))
        for index in range(len(events))
    ]
    for index, activity in zip(recordable, recorded, strict=True):
        outcomes[index] = EventOutcome(
            status=EventStatus.RECORDED if activity else EventStatus.DUPLICATE,
            activity=activity,
            contact_id=resolved.contact_ids[index],
        )
    if not trusted:
        return [EventOutcome(status=EventStatus.ACCEPTED) for _ in events]
    return outcomes


def _activity_input(event: IncomingEvent, contact_id: int | None, source: str) -> ActivityInput:
    return ActivityInput(
        kind=event.kind,
        source=source,
        contact_id=contact_id,
        anonymous_id=event.person.anonymous_id,
        occurred_at=event.occurred_at,
        properties=event.properties,
        idempotency_key=event.idempotency_key,
    )
