"""Segments: saving definitions, and tracking who enters and leaves each segment.

Membership changes are written while holding row locks on the segments involved
(`select_for_update`), and re-checked under them, so two workers refreshing the same
contacts cannot both record an entry. The idempotency key of every segment_entered /
segment_exited activity names the entry's number as a second guard: a re-delivered
task records nothing, while a later re-entry (entry 2) is a new, recordable event.

Two paths write memberships. A refresh re-checks a few contacts (those an activity
batch touched) against every segment, in Python, a fixed number of queries per 500
contacts. A full evaluation of one segment is set-based: who matches is computed once,
into a temporary table (one statement, however heavy the definition); then per range of
contact ids, one UPDATE for exits, one for re-entries, one INSERT … SELECT for new
members and one INSERT … SELECT for their activities, then one `activities_recorded`
signal. Each range commits on its own, so a huge first evaluation makes steady
progress, and a task re-delivered after a timeout carries on where it stopped.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import BooleanField, Case, F, Max, Min, Q, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Greatest
from django.utils import timezone
from django_q.tasks import async_task

from crm.models import Activity, Contact, Segment, SegmentCountSnapshot, SegmentMembership
from crm.segment_selectors import (
    segment_current_memberships,
    segment_query_settings,
    segments_using,
)
from crm.segments.compiler import CompileContext, SegmentCompileError, compile_segment
from crm.segments.validation import definition_validate
from crm.services.activities import ActivityInput, activity_record_batch
from crm.set_inserts import rows_insert
from crm.signals import activities_recorded

logger = logging.getLogger(__name__)

SOURCE = "segments"
ENTERED = "segment_entered"
EXITED = "segment_exited"
#: Kinds this module records; batches made only of them never trigger a refresh.
SEGMENT_KINDS = frozenset({ENTERED, EXITED})
EVALUATE_TASK = "crm.tasks.evaluate_segment_task"
EDITABLE_FIELDS = frozenset({"name", "description", "owner", "definition"})
#: A count history point is kept after every change, and at least this often.
SNAPSHOT_QUIET_INTERVAL = datetime.timedelta(days=1)
#: Contacts re-checked per transaction, and segments checked per query.
CHUNK_SIZE = 500
SEGMENTS_PER_QUERY = 50
#: Contact ids per transaction in a full evaluation: big enough that a 1M-contact table
#: is 20 statements of each kind, small enough that one range commits in seconds.
EVALUATE_RANGE_SIZE = 50_000


@dataclass(frozen=True)
class MembershipChanges:
    entered: int = 0
    exited: int = 0

    def __add__(self, other: MembershipChanges) -> MembershipChanges:
        return MembershipChanges(self.entered + other.entered, self.exited + other.exited)


@dataclass(frozen=True)
class SegmentEvaluation:
    """What a full evaluation of one segment found."""

    segment_id: int
    member_count: int
    entered: int
    exited: int
    duration_ms: int
    #: Set when the time budget ran out: continue from this contact id (nothing counted yet).
    resume_at: int | None = None


# --- Saving segments ------------------------------------------------------------------------


@transaction.atomic
def segment_create(
    *,
    key: str,
    name: str,
    definition: dict,
    description: str = "",
    owner: AbstractBaseUser | None = None,
) -> Segment:
    """Save a new segment and evaluate its members once the transaction commits."""
    segment = Segment(
        key=key, name=name, description=description, owner=owner, definition=definition
    )
    _clean(segment)
    segment.save()
    _enqueue_evaluation(segment)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, **fields) -> Segment:
    """Change name, description, owner or definition; a new definition is re-evaluated.

    The key is the segment's identity (other segments and config files name it), so it
    never changes.
    """
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"segment_update() cannot change: {', '.join(sorted(unknown))}")
    definition_changed = "definition" in fields and fields["definition"] != segment.definition
    for name, value in fields.items():
        setattr(segment, name, value)
    _clean(segment)
    segment.save(update_fields=[*fields, "updated_at"])
    if definition_changed:
        _enqueue_evaluation(segment)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    """Delete a segment no other segment uses; its membership history goes with it."""
    users = segments_using(key=segment.key)
    if users:
        names = ", ".join(sorted(user.name for user in users))
        raise ValidationError(
            f"{segment.name} is used by other segments ({names}): remove it from them first."
        )
    segment.delete()


def _clean(segment: Segment) -> None:
    segment.full_clean(exclude=["owner", "definition"])
    definition_validate(segment.definition, segment_key=segment.key)


def _enqueue_evaluation(segment: Segment) -> None:
    transaction.on_commit(partial(async_task, EVALUATE_TASK, segment.pk))


# --- Tracking membership --------------------------------------------------------------------


def segment_memberships_refresh(
    *, contact_ids: Iterable[int], now: datetime.datetime | None = None
) -> MembershipChanges:
    """Re-check these contacts against every segment, recording who entered and who left."""
    now = now or timezone.now()
    ids = sorted(set(contact_ids))
    changes = MembershipChanges()
    for start in range(0, len(ids), CHUNK_SIZE):
        changes += _refresh(ids[start : start + CHUNK_SIZE], now=now)
    return changes


def segment_evaluate(
    *,
    segment: Segment,
    now: datetime.datetime | None = None,
    resume_at: int | None = None,
    time_budget: datetime.timedelta | None = None,
    carried: MembershipChanges | None = None,
) -> SegmentEvaluation:
    """Check every contact against the segment; record entries, exits and the count.

    With a time budget, stops between two ranges once it is spent and returns where to
    resume (`resume_at`), so a task never outlives its timeout; `carried` adds what
    earlier parts of the same evaluation changed to the count history.
    """
    now = now or timezone.now()
    started = time.perf_counter()
    initial = segment.last_evaluated_at is None
    # Compiled once for every range (and a definition that no longer compiles fails here).
    condition = compile_segment(segment, context=CompileContext(now=now, whole_table=True))
    bounds = Contact.objects.aggregate(lowest=Min("pk"), highest=Max("pk"))
    changes = carried or MembershipChanges()
    if bounds["lowest"] is None:
        return _record_count(segment, now, changes, round((time.perf_counter() - started) * 1000))
    first = max(bounds["lowest"], resume_at or bounds["lowest"])
    # A continuation only needs who matches from where it resumes.
    with _matching_snapshot(condition & Q(pk__gte=first)) as snapshot:
        for lowest in range(first, bounds["highest"] + 1, EVALUATE_RANGE_SIZE):
            spent = time.perf_counter() - started
            if time_budget is not None and lowest > first and spent > time_budget.total_seconds():
                return SegmentEvaluation(
                    segment.pk,
                    segment.member_count,
                    changes.entered,
                    changes.exited,
                    round(spent * 1000),
                    resume_at=lowest,
                )
            contact_range = (lowest, lowest + EVALUATE_RANGE_SIZE)
            changes += _evaluate_range(segment, snapshot, contact_range, now, initial=initial)
    duration_ms = round((time.perf_counter() - started) * 1000)
    return _record_count(segment, now, changes, duration_ms)


@contextmanager
def _matching_snapshot(condition: Q) -> Iterator[str]:
    """Who matches, computed once into a temporary table: yields the table's name.

    Each range used to evaluate the condition itself, three times (exits, re-entries,
    new members): "at least 3 page views in 30 days" grouped all ~885,000 recent page
    views 60 times for a 1M-contact table (2.5 s a range at 1M, most of a first
    evaluation's time). One statement now does it once; ranges read the table by id.
    It is as of the evaluation's start, so a range never undoes what a refresh wrote
    after it (see `_evaluate_range_locked`).
    """
    name = f"segment_matching_{uuid.uuid4().hex[:16]}"
    sql, params = Contact.objects.filter(condition).order_by().values("pk").query.sql_with_params()
    with segment_query_settings(whole_table=True), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {name} (contact_id bigint PRIMARY KEY)")
        cursor.execute(f"INSERT INTO {name} (contact_id) {sql}", params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {name}")  # a temporary table has no statistics
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


def _evaluate_range(
    segment: Segment,
    snapshot: str,
    contact_range: tuple[int, int],
    now: datetime.datetime,
    *,
    initial: bool,
) -> MembershipChanges:
    """Apply the segment to contacts with lowest <= pk < highest, in a fixed number of queries."""
    # One transaction per range, with the segment queries' work_mem.
    with segment_query_settings(whole_table=False):
        return _evaluate_range_locked(segment, snapshot, contact_range, now, initial=initial)


def _evaluate_range_locked(
    segment: Segment,
    snapshot: str,
    contact_range: tuple[int, int],
    now: datetime.datetime,
    *,
    initial: bool,
) -> MembershipChanges:
    if not _lock_segments([segment.pk]):
        return MembershipChanges()  # deleted meanwhile
    lowest, highest = contact_range
    snapshot_ids = RawSQL(
        f"SELECT contact_id FROM {snapshot} WHERE contact_id >= %s AND contact_id < %s",
        (lowest, highest),
    )
    matching = Contact.objects.filter(pk__in=snapshot_ids)
    in_range = SegmentMembership.objects.filter(
        segment=segment, contact_id__gte=lowest, contact_id__lt=highest
    )
    is_matching = Q(contact_id__in=snapshot_ids)
    # The snapshot is as of `now`: a refresh that entered or let go of a contact since
    # then decided with fresher data, so its membership is left as it is.
    exited = in_range.filter(~is_matching, exited_at__isnull=True, entered_at__lte=now).update(
        exited_at=now
    )
    in_range.filter(is_matching, exited_at__isnull=False, exited_at__lte=now).update(
        entered_at=now, exited_at=None, entry_count=F("entry_count") + 1
    )
    _insert_memberships(segment, matching, now)
    # Whoever entered or left in this range carries `now` as the time of it. Entries are
    # looked up from the snapshot's ids (the membership table's statistics lag behind a
    # first evaluation that is filling it).
    entered_rows = in_range.filter(is_matching, entered_at=now, exited_at__isnull=True)
    exited_rows = in_range.filter(exited_at=now)
    activities = _insert_activities(ENTERED, segment, entered_rows, now, initial=initial)
    entered = len(activities)
    activities += _insert_activities(EXITED, segment, exited_rows, now, initial=False)
    if activities:
        # One signal per range, as activity_record_batch sends one per batch.
        activities_recorded.send(sender=Activity, activities=activities)
    return MembershipChanges(entered, exited)


def _insert_memberships(segment: Segment, contacts, now: datetime.datetime) -> None:
    """INSERT … SELECT: the new members never travel through Python.

    Who already has a row (a member, or one who left) is skipped by the unique
    (segment, contact) index, not by a NOT EXISTS: during a first evaluation the
    membership table grows faster than its statistics, and PostgreSQL planned that
    anti-join as a nested loop over a materialised list of the segment's rows (140
    million comparisons, 34 s, for one 50,000-id range at 1M).
    """
    sql, params = contacts.order_by().values(member_id=F("pk")).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SegmentMembership._meta.db_table} "
            "(segment_id, contact_id, entered_at, exited_at, entry_count) "
            f"SELECT %s, matching.member_id, %s, NULL, 1 FROM ({sql}) AS matching "
            # WHERE true: SQLite's parser reads "ON" after a FROM as a join's otherwise.
            "WHERE true ON CONFLICT (segment_id, contact_id) DO NOTHING",
            (segment.pk, _db_datetime(now), *params),
        )


def _insert_activities(
    kind: str, segment: Segment, memberships, now: datetime.datetime, *, initial: bool
) -> list[Activity]:
    """Record segment_entered / segment_exited for these memberships in one INSERT … SELECT.

    The rows activity_record_batch would write (same idempotency key and properties);
    none of its other work applies: the kinds are valid and never engagement, and the
    membership rows written under the segment's lock make each entry and exit happen
    once (ON CONFLICT DO NOTHING on the idempotency key is the second guard).
    """
    properties = {"segment": segment.key, "segment_name": segment.name}
    if initial:
        properties["initial"] = True
    verb = "entered" if kind == ENTERED else "exited"
    rows_sql, rows_params = (
        memberships.order_by()
        .values(picked_contact=F("contact_id"), picked_entry=F("entry_count"))
        .query.sql_with_params()
    )
    key_prefix = f"segment:{segment.pk}:"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Activity._meta.db_table} (kind, anonymous_id, occurred_at, "
            "recorded_at, source, properties, idempotency_key, contact_id) "
            f"SELECT %s, '', %s, %s, %s, {_properties_sql()}, "
            "CAST(%s AS TEXT) || CAST(picked.picked_contact AS TEXT) || CAST(%s AS TEXT) "
            "|| CAST(picked.picked_entry AS TEXT), picked.picked_contact "
            f"FROM ({rows_sql}) AS picked WHERE true "
            "ON CONFLICT DO NOTHING RETURNING id, contact_id, idempotency_key",
            (
                kind,
                _db_datetime(now),
                _db_datetime(timezone.now()),
                SOURCE,
                json.dumps(properties),
                key_prefix,
                f":{verb}:",
                *rows_params,
            ),
        )
        returned = cursor.fetchall()
    # Objects for the receivers, built from what was written (no second read).
    return [
        Activity(
            pk=pk,
            kind=kind,
            contact_id=contact_id,
            occurred_at=now,
            source=SOURCE,
            properties={**properties, "entry": int(key.rsplit(":", 1)[1])},
            idempotency_key=key,
        )
        for pk, contact_id, key in returned
    ]


def _properties_sql() -> str:
    """The activity's properties: the constant part (a JSON parameter) plus the entry number."""
    if connection.vendor == "postgresql":
        return "(%s::jsonb || jsonb_build_object('entry', picked.picked_entry))"
    return "json_set(%s, '$.entry', picked.picked_entry)"


def _db_datetime(value: datetime.datetime):
    """A datetime as the database stores it, so raw SQL compares equal with ORM writes."""
    return connection.ops.adapt_datetimefield_value(value)


@transaction.atomic
def _record_count(
    segment: Segment, now: datetime.datetime, changes: MembershipChanges, duration_ms: int
) -> SegmentEvaluation:
    Segment.objects.select_for_update().filter(pk=segment.pk).first()
    count = segment_current_memberships(segment).count()
    Segment.objects.filter(pk=segment.pk).update(member_count=count, last_evaluated_at=now)
    segment.member_count, segment.last_evaluated_at = count, now
    if changes.entered or changes.exited or _history_is_stale(segment, now):
        SegmentCountSnapshot.objects.create(
            segment=segment,
            counted_at=now,
            member_count=count,
            entered=changes.entered,
            exited=changes.exited,
            duration_ms=duration_ms,
        )
    return SegmentEvaluation(segment.pk, count, changes.entered, changes.exited, duration_ms)


def _history_is_stale(segment: Segment, now: datetime.datetime) -> bool:
    """A quiet segment still gets a daily point; every sweep would be 96 rows a day."""
    latest = segment.count_snapshots.order_by("-counted_at").values("counted_at").first()
    return latest is None or latest["counted_at"] <= now - SNAPSHOT_QUIET_INTERVAL


# --- One chunk of contacts, under the segments' locks ---------------------------------------


@dataclass
class _Plan:
    new: list[tuple[Segment, int]]
    reentering: list[tuple[Segment, int, SegmentMembership]]
    leaving: list[tuple[Segment, int, SegmentMembership]]


@transaction.atomic
def _refresh(
    contact_ids: Sequence[int],
    *,
    now: datetime.datetime,
    segment_pks: Sequence[int] | None = None,
    initial: bool = False,
) -> MembershipChanges:
    segments = _lock_segments(segment_pks)
    if not segments or not contact_ids:
        return MembershipChanges()
    context = CompileContext(now=now)
    if segment_pks is None:
        # Every segment is loaded: nested segment conditions need no extra query.
        context.definitions = {segment.key: segment.definition for segment in segments}
    matching = _matching(segments, contact_ids, context)
    plan = _plan(matching, contact_ids, _memberships(matching, contact_ids))
    _write(plan, now)
    _record_activities(plan, now, initial=initial)
    _adjust_counts(plan)
    return MembershipChanges(len(plan.new) + len(plan.reentering), len(plan.leaving))


def _lock_segments(segment_pks: Sequence[int] | None) -> list[Segment]:
    segments = Segment.objects.select_for_update().order_by("pk")
    if segment_pks is not None:
        segments = segments.filter(pk__in=segment_pks)
    return list(segments.only("pk", "key", "name", "definition", "member_count"))


def _matching(
    segments: list[Segment], contact_ids: Sequence[int], context: CompileContext
) -> dict[Segment, set[int]]:
    """Which of the contacts each segment holds, in one query per SEGMENTS_PER_QUERY."""
    compiled = {}
    for segment in segments:
        try:
            compiled[segment] = compile_segment(segment, context=context)
        except SegmentCompileError as error:
            logger.warning("Segment %s skipped: %s", segment.pk, error)
    matching: dict[Segment, set[int]] = {segment: set() for segment in compiled}
    items = list(compiled.items())
    for start in range(0, len(items), SEGMENTS_PER_QUERY):
        batch = items[start : start + SEGMENTS_PER_QUERY]
        flags = {
            f"in_segment_{segment.pk}": Case(
                When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
            )
            for segment, condition in batch
        }
        rows = (
            Contact.objects.filter(pk__in=contact_ids).annotate(**flags).values_list("pk", *flags)
        )
        for pk, *values in rows:
            for (segment, _condition), is_in in zip(batch, values, strict=True):
                if is_in:
                    matching[segment].add(pk)
    return matching


def _memberships(
    matching: dict[Segment, set[int]], contact_ids: Sequence[int]
) -> dict[tuple[int, int], SegmentMembership]:
    rows = SegmentMembership.objects.filter(
        segment_id__in=[segment.pk for segment in matching], contact_id__in=contact_ids
    ).only("pk", "segment_id", "contact_id", "exited_at", "entry_count")
    return {(row.segment_id, row.contact_id): row for row in rows}


def _plan(
    matching: dict[Segment, set[int]],
    contact_ids: Sequence[int],
    memberships: dict[tuple[int, int], SegmentMembership],
) -> _Plan:
    plan = _Plan(new=[], reentering=[], leaving=[])
    for segment, inside in matching.items():
        for contact_id in contact_ids:
            row = memberships.get((segment.pk, contact_id))
            is_member = row is not None and row.exited_at is None
            if contact_id in inside and row is None:
                plan.new.append((segment, contact_id))
            elif contact_id in inside and not is_member:
                plan.reentering.append((segment, contact_id, row))
            elif contact_id not in inside and is_member:
                plan.leaving.append((segment, contact_id, row))
    return plan


def _write(plan: _Plan, now: datetime.datetime) -> None:
    rows_insert(
        SegmentMembership,
        [
            SegmentMembership(segment=segment, contact_id=contact_id, entered_at=now)
            for segment, contact_id in plan.new
        ],
    )
    if plan.reentering:
        SegmentMembership.objects.filter(pk__in=[row.pk for _s, _c, row in plan.reentering]).update(
            entered_at=now, exited_at=None, entry_count=F("entry_count") + 1
        )
        for _segment, _contact_id, row in plan.reentering:
            row.entry_count += 1
    if plan.leaving:
        SegmentMembership.objects.filter(pk__in=[row.pk for _s, _c, row in plan.leaving]).update(
            exited_at=now
        )


def _record_activities(plan: _Plan, now: datetime.datetime, *, initial: bool) -> None:
    entries = [(segment, contact_id, 1) for segment, contact_id in plan.new]
    entries += [
        (segment, contact_id, row.entry_count) for segment, contact_id, row in plan.reentering
    ]
    items = [
        _activity(ENTERED, segment, contact_id, entry, now, initial)
        for segment, contact_id, entry in entries
    ]
    items += [
        _activity(EXITED, segment, contact_id, row.entry_count, now, initial=False)
        for segment, contact_id, row in plan.leaving
    ]
    if items:
        activity_record_batch(items=items)


def _activity(
    kind: str, segment: Segment, contact_id: int, entry: int, now: datetime.datetime, initial: bool
) -> ActivityInput:
    properties = {"segment": segment.key, "segment_name": segment.name, "entry": entry}
    if initial:
        # Present on the first evaluation of a new segment: sequences may skip these people.
        properties["initial"] = True
    verb = "entered" if kind == ENTERED else "exited"
    return ActivityInput(
        kind=kind,
        source=SOURCE,
        contact_id=contact_id,
        occurred_at=now,
        properties=properties,
        idempotency_key=f"segment:{segment.pk}:{contact_id}:{verb}:{entry}",
    )


def _adjust_counts(plan: _Plan) -> None:
    deltas: dict[int, int] = {}
    for segment, *_rest in [*plan.new, *plan.reentering]:
        deltas[segment.pk] = deltas.get(segment.pk, 0) + 1
    for segment, *_rest in plan.leaving:
        deltas[segment.pk] = deltas.get(segment.pk, 0) - 1
    changed = {pk: delta for pk, delta in deltas.items() if delta}
    if not changed:
        return
    Segment.objects.filter(pk__in=changed).update(
        member_count=Greatest(
            Case(*(When(pk=pk, then=F("member_count") + delta) for pk, delta in changed.items())),
            Value(0),
        )
    )
