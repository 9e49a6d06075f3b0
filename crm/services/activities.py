"""Recording activities: the append-only event log every other app listens to."""

import datetime
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.deferred import deferred_add, deferred_block
from crm.models import Activity, Contact, slug_key_validator
from crm.set_inserts import model_new, rows_insert
from crm.set_updates import column_greatest
from crm.signals import activities_recorded

K = Activity.Kind

#: Kinds that are not the person doing something, so they never count as engagement.
NOT_ENGAGEMENT_KINDS = frozenset(
    {
        K.EMAIL_SENT,
        K.EMAIL_DELIVERED,
        K.EMAIL_BOUNCED,
        K.EMAIL_COMPLAINED,
        K.UNSUBSCRIBED,
        K.CONSENT_WITHDRAWN,
        K.LIFECYCLE_STAGE_CHANGED,
        K.HANDED_OFF,
        "handoff_closed",
        K.DEAL_STAGE_CHANGED,
        K.NOTE_ADDED,
        "segment_entered",
        "segment_exited",
        # Recorded by crm.predictions (refit, milestone check): not the person doing something.
        "churn_risk_rose",
        "milestone_missed",
    }
)


@dataclass(frozen=True)
class ActivityInput:
    """One activity to record; give a contact_id, an anonymous_id, or both."""

    kind: str
    source: str
    contact_id: int | None = None
    anonymous_id: str = ""
    occurred_at: datetime.datetime | None = None
    properties: dict = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True)
class ActivityBatchResult:
    """What a batch did: `activities[i]` is the new row for input i, or None for a replay."""

    activities: tuple[Activity | None, ...]

    @property
    def created(self) -> list[Activity]:
        return [activity for activity in self.activities if activity is not None]

    @property
    def duplicate_indexes(self) -> list[int]:
        return [index for index, activity in enumerate(self.activities) if activity is None]


def activity_record(
    *,
    kind: str,
    source: str,
    contact: Contact | None = None,
    anonymous_id: str = "",
    occurred_at: datetime.datetime | None = None,
    properties: dict | None = None,
    idempotency_key: str = "",
) -> Activity | None:
    """Record one activity; return it, or None when its idempotency key was seen before."""
    item = ActivityInput(
        kind=kind,
        source=source,
        contact_id=contact.pk if contact else None,
        anonymous_id=anonymous_id,
        occurred_at=occurred_at,
        properties=properties or {},
        idempotency_key=idempotency_key,
    )
    return activity_record_batch(items=[item]).activities[0]


@transaction.atomic
def activity_record_batch(*, items: Sequence[ActivityInput]) -> ActivityBatchResult:
    """Record many activities in a fixed number of queries; replays record nothing.

    Sends `activities_recorded` once for the whole batch with the new rows, so
    receivers (scoring, sequences) work per batch rather than per activity.
    """
    _validate(items)
    now = timezone.now()
    rows: list[Activity | None] = [_build(item, now) for item in items]
    _drop_replays(rows)
    created = _insert(rows)
    _touch_last_engaged(created)
    if created:
        _announce(created)
    return ActivityBatchResult(activities=tuple(rows))


@contextmanager
def activities_recorded_deferred() -> Iterator[None]:
    """Record activities as usual inside the block, but announce them once, at its end.

    For services that record a few activities per item in a loop (opening 40 handoffs
    records 40 `handed_off` and 40 stage changes): receivers then run once for the lot,
    a fixed number of queries, instead of once per item. Receivers still run inside the
    same transaction, before the block returns; nothing is announced if it raises. A
    batch recorded inside a savepoint that was rolled back is not announced. Nested
    blocks announce at the outermost one's end. Must run inside `transaction.atomic`.
    """
    with deferred_block(
        "activities",
        "activities_recorded_deferred() needs an atomic block: the receivers must run "
        "in the transaction that recorded the activities.",
    ) as live:
        yield
    activities = [a for batch in live or () for a in batch]
    if activities:
        activities_recorded.send(sender=Activity, activities=activities)


def _announce(created: list[Activity]) -> None:
    if not deferred_add("activities", created):
        activities_recorded.send(sender=Activity, activities=created)


def _validate(items: Sequence[ActivityInput]) -> None:
    errors = {}
    for index, item in enumerate(items):
        problems = []
        try:
            slug_key_validator(item.kind)
        except ValidationError:
            problems.append(f"kind {item.kind!r} must be a lower-case slug such as page_viewed")
        if item.contact_id is None and not item.anonymous_id:
            problems.append("needs a contact or an anonymous id")
        if not item.source:
            problems.append("needs a source")
        if not isinstance(item.properties, dict):
            problems.append("properties must be an object")
        if problems:
            errors[f"item {index}"] = "; ".join(problems)
    if errors:
        raise ValidationError(errors)


_activity_new = model_new(Activity)  # Activity() without Model.__init__'s per-call cost


def _build(item: ActivityInput, now: datetime.datetime) -> Activity:
    return _activity_new(
        kind=item.kind,
        source=item.source,
        contact_id=item.contact_id,
        anonymous_id=item.anonymous_id,
        occurred_at=item.occurred_at or now,
        properties=item.properties,
        idempotency_key=item.idempotency_key,
    )


def _drop_replays(rows: list[Activity | None]) -> None:
    """Replace rows whose (source, idempotency key) exists, or repeats earlier in the batch."""
    keys_by_source: dict[str, set[str]] = {}
    for row in rows:
        if row is not None and row.idempotency_key:
            keys_by_source.setdefault(row.source, set()).add(row.idempotency_key)
    seen = {
        (source, key)
        for source, keys in keys_by_source.items()
        for key in Activity.objects.filter(source=source, idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    }
    for index, row in enumerate(rows):
        if row is None or not row.idempotency_key:
            continue
        key = (row.source, row.idempotency_key)
        if key in seen:
            rows[index] = None
        else:
            seen.add(key)


def _insert(rows: list[Activity | None]) -> list[Activity]:
    # rows_insert, not bulk_create: bulk_create's per-value compiling was ~10% of a
    # 1,000-event request (docs/performance.md).
    new = [row for row in rows if row is not None]
    try:
        with transaction.atomic():
            rows_insert(Activity, new)
            return new
    except IntegrityError:
        # Another process recorded one of these keys after our check: look again, once.
        for row in new:
            row.pk, row._state.adding = None, True
        _drop_replays(rows)
        new = [row for row in rows if row is not None]
        rows_insert(Activity, new)
        return new


def _touch_last_engaged(activities: list[Activity]) -> None:
    """Move each engaged contact's last_engaged_at forward, in one UPDATE ... FROM (VALUES)."""
    latest: dict[int, datetime.datetime] = {}
    for activity in activities:
        if activity.contact_id is None or not _is_engagement(activity):
            continue
        current = latest.get(activity.contact_id)
        if current is None or activity.occurred_at > current:
            latest[activity.contact_id] = activity.occurred_at
    column_greatest(Contact, "last_engaged_at", latest)


def _is_engagement(activity: Activity) -> bool:
    if activity.kind in NOT_ENGAGEMENT_KINDS:
        return False
    # Machine opens (e.g. Apple Mail Privacy Protection prefetch) are not a person reading.
    return not (activity.kind == K.EMAIL_OPENED and activity.properties.get("is_machine_open"))
