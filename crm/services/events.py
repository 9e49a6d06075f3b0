"""Behaviour sent by websites, apps and servers, recorded as activities."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from django.db import transaction

from crm.models import Activity
from crm.services.activities import ActivityInput, activity_record_batch
from crm.services.identity import PersonRef, contacts_resolve_for_events


class EventStatus(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    INVALID = "invalid"


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
def events_ingest(*, events: Sequence[IncomingEvent], source: str) -> list[EventOutcome]:
    """Record a batch of events as activities of `source`; `outcome[i]` is event i's fate.

    Contacts are found or created for the whole batch at once and the activities
    are written in one activity_record_batch call, so the cost in queries does not
    grow with the batch. An event whose person cannot be resolved is reported
    invalid and the others are still recorded.
    """
    resolved = contacts_resolve_for_events(people=[event.person for event in events])
    recordable = [index for index in range(len(events)) if index not in resolved.errors]
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
