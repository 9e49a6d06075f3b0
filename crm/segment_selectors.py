"""Reads about segments: who matches a definition, who is a tracked member, the preview."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Case, Count, Exists, OuterRef, Q, QuerySet, Value, When

from crm.models import ConsentTopic, Contact, Segment, SegmentCountSnapshot, SegmentMembership
from crm.segments.compiler import (
    CompileContext,
    SegmentCompileError,
    compile_definition,
    compile_segment,
)
from crm.segments.validation import (
    DefinitionProblem,
    References,
    definition_problems,
    segment_references,
)
from crm.selectors import consent_granted_exists, contact_is_suppressed_expression

logger = logging.getLogger(__name__)

PREVIEW_SAMPLE_SIZE = 20
#: PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
QUERY_CANCELED = "57014"
COUNT_HISTORY_LENGTH = 30
#: work_mem for whole-table segment queries (PostgreSQL's default is 4MB). Grouping
#: "at least 3 page views in 30 days" at 1M contacts needs ~45MB: at 4MB the aggregate
#: spilled to disk in 21 batches, in each parallel worker. Also what lets the set of
#: contacts who did X inside an OR be hashed once (compiler._contacts_who_did).
#: Per transaction (SET LOCAL), so only these queries get it.
SEGMENT_WORK_MEM = "64MB"
#: What a transaction reading a definition over the whole contact table sets. Besides
#: work_mem: no HashAggregate. "At least N times" groups activities by contact, and
#: there are nearly as many groups as rows (880,000 page views of 386,000 contacts in
#: 30 days at 1M). PostgreSQL costed hashing them as cheaper, but a 45 MB hash table
#: misses the CPU cache on every row, and the plan it chose hashed everything again in
#: each parallel worker: ~1 CPU-second. Sorting instead (a parallel sort and partial
#: GroupAggregate, each worker its share of the index, then a merge join to the
#: contacts) took 0.4 CPU-seconds, and every other bench shape took the same or less
#: (docs/performance.md, "Segments at 1M"). Hashed SubPlans and hash joins are not
#: aggregates and stay allowed.
WHOLE_TABLE_SETTINGS = {"work_mem": SEGMENT_WORK_MEM, "enable_hashagg": "off"}


@contextmanager
def segment_query_settings(*, whole_table: bool = True) -> Iterator[None]:
    """A transaction for segment queries, with PostgreSQL settings local to it.

    whole_table: the transaction reads a definition over every contact (a count, the
    preview, an evaluation's snapshot) and gets WHOLE_TABLE_SETTINGS; otherwise (an
    evaluation's range, whose receivers also run inside it) work_mem only.
    (JIT is already off for every connection: config/settings.py, docs/operations.md.)
    """
    settings = WHOLE_TABLE_SETTINGS if whole_table else {"work_mem": SEGMENT_WORK_MEM}
    with transaction_settings(settings):
        yield


@contextmanager
def transaction_settings(settings: dict[str, str]) -> Iterator[None]:
    """A transaction (atomic) whose PostgreSQL settings last only as long as it does.

    Set with `set_config(name, value, true)`, SET LOCAL's function form. Inside an outer
    transaction atomic() is only a savepoint, and a local setting would last until the
    outer transaction ends: the values found are then put back on the way out (after an
    error, rolling back to the savepoint undoes them). Other databases: just atomic().
    """
    nested = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor != "postgresql" or not settings:
            yield
            return
        names = list(settings)
        sets = ", ".join("set_config(%s, %s, true)" for _ in names)
        with connection.cursor() as cursor:
            # One statement: the current values are read before the new ones are set.
            cursor.execute(
                "SELECT " + ", ".join("current_setting(%s)" for _ in names) + ", " + sets,
                (*names, *chain.from_iterable(settings.items())),
            )
            previous = cursor.fetchone()[: len(names)]
        yield
        if nested:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT " + sets, tuple(chain.from_iterable(zip(names, previous, strict=True)))
                )


def segment_contacts(
    *, segment: Segment | None = None, definition: Any = None, context: CompileContext | None = None
) -> QuerySet[Contact]:
    """The contacts matching a segment (or a definition) right now, in one query.

    Compiled for reading the whole table (CompileContext.whole_table); run big reads
    inside `segment_query_settings()`.
    """
    context = context or CompileContext(whole_table=True)
    if segment is not None:
        return Contact.objects.filter(compile_segment(segment, context=context))
    return Contact.objects.filter(compile_definition(definition, context=context))


def segment_count(*, segment: Segment | None = None, definition: Any = None) -> int:
    """How many contacts match a segment (or a definition) right now: one COUNT."""
    with segment_query_settings(whole_table=True):
        return segment_contacts(segment=segment, definition=definition).count()


def segments_containing(
    *,
    segments: Iterable[Segment],
    contact_ids: Iterable[int],
    context: CompileContext | None = None,
) -> dict[int, set[int]]:
    """Map each segment's pk to which of the contacts match it right now, in one query.

    Live, not from SegmentMembership: a contact created by the request being handled
    is not a tracked member yet. A segment that no longer compiles (it names a
    deleted segment) holds nobody, so callers inside a recording transaction never fail.
    """
    context = context or CompileContext()
    flags = {}
    for segment in segments:
        try:
            condition = compile_segment(segment, context=context)
        except SegmentCompileError as error:
            logger.warning("Segment %s skipped: %s", segment.pk, error)
            continue
        flags[segment.pk] = Case(
            When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
        )
    containing: dict[int, set[int]] = {segment_pk: set() for segment_pk in flags}
    contact_ids = list(contact_ids)
    if not flags or not contact_ids:
        return containing
    named = {f"in_segment_{segment_pk}": flag for segment_pk, flag in flags.items()}
    rows = Contact.objects.filter(pk__in=contact_ids).annotate(**named).values_list("pk", *named)
    for pk, *values in rows:
        for segment_pk, is_in in zip(flags, values, strict=True):
            if is_in:
                containing[segment_pk].add(pk)
    return containing


def segment_members(*, segment: Segment) -> QuerySet[Contact]:
    """The segment's tracked current members (what entered and has not left)."""
    current = segment_current_memberships(segment).filter(contact=OuterRef("pk"))
    return Contact.objects.filter(Exists(current))


def segment_current_memberships(segment: Segment | int) -> QuerySet[SegmentMembership]:
    return SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)


def contacts_sendable(queryset: QuerySet[Contact], *, topic: ConsentTopic) -> QuerySet[Contact]:
    """The contacts marketing may email about `topic`: consented and not suppressed."""
    return queryset.filter(consent_granted_exists(topic), ~contact_is_suppressed_expression())


def segment_count_history(*, segment: Segment) -> list[SegmentCountSnapshot]:
    """The latest full evaluations, newest first."""
    return list(segment.count_snapshots.order_by("-counted_at", "-pk")[:COUNT_HISTORY_LENGTH])


def segments_using(*, key: str) -> list[Segment]:
    """The segments whose definitions name segment `key`."""
    return [
        segment
        for segment in Segment.objects.exclude(key=key).only("pk", "key", "name", "definition")
        if key in segment_references(segment.definition)
    ]


# --- The builder's preview ------------------------------------------------------------------


#: How long the preview may spend counting exactly (PostgreSQL). The page's budget is
#: 300 ms at 1M contacts; a nested consent/behaviour/deal count took 1.5–15 s there.
PREVIEW_EXACT_MILLISECONDS = 150
#: Past that, the preview counts a sample of about this many contacts and scales it up.
PREVIEW_ESTIMATE_SAMPLE = 10_000
#: And gives up on the sample after this long (it reads ~1% of a 1M table).
PREVIEW_ESTIMATE_MILLISECONDS = 2_000


@dataclass(frozen=True)
class SegmentPreview:
    """What the builder shows: problems, or the count, a sample and the sendable count.

    `estimated`: the counts are scaled up from `sampled_percent` of the contacts (the
    exact count took too long for a preview); `count is None`: not even the sample
    could be counted in time. A saved segment is always counted exactly, in a worker.
    """

    problems: tuple[DefinitionProblem, ...] = ()
    count: int | None = 0
    sample: tuple[Contact, ...] = ()
    milliseconds: int = 0
    topic: ConsentTopic | None = None
    sendable_count: int | None = None
    estimated: bool = False
    sampled_percent: float | None = None

    @property
    def is_valid(self) -> bool:
        return not self.problems


def segment_preview(
    *,
    definition: Any,
    segment_key: str = "",
    topic: ConsentTopic | None = None,
    sample_size: int = PREVIEW_SAMPLE_SIZE,
) -> SegmentPreview:
    """Validate the definition, then count it, take a sample and count who is sendable."""
    problems = definition_problems(
        definition, references=References.load(), segment_key=segment_key
    )
    if problems:
        return SegmentPreview(problems=tuple(problems))
    started = time.perf_counter()
    sendable_q = None
    if topic:
        sendable_q = Q(consent_granted_exists(topic)) & ~Q(contact_is_suppressed_expression())
    if connection.vendor != "postgresql":
        # No statement timeout to bound it; SQLite installs are small.
        preview = _preview_exactly(definition, topic, sendable_q, sample_size)
    else:
        preview = _preview_within(
            PREVIEW_EXACT_MILLISECONDS, _preview_exactly, definition, topic, sendable_q, sample_size
        ) or _preview_within(
            PREVIEW_ESTIMATE_MILLISECONDS,
            _preview_estimated,
            definition,
            topic,
            sendable_q,
            sample_size,
        )
    if preview is None:
        preview = SegmentPreview(count=None, topic=topic, estimated=True)
    elapsed = round((time.perf_counter() - started) * 1000)
    return replace(preview, milliseconds=elapsed)


def _preview_within(milliseconds: int, preview, *args) -> SegmentPreview | None:
    """Run a preview under a statement timeout; None when PostgreSQL cancelled it."""
    try:
        timeout = {"statement_timeout": str(int(milliseconds))}
        with transaction_settings({**timeout, **WHOLE_TABLE_SETTINGS}):
            return preview(*args)
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != QUERY_CANCELED:
            raise
        return None


def _preview_exactly(
    definition: Any, topic: ConsentTopic | None, sendable_q: Q | None, sample_size: int
) -> SegmentPreview:
    matching = segment_contacts(definition=definition)
    if sendable_q is not None:
        # One pass over the segment counts both: counting the sendable ones in a second
        # query evaluated the whole definition twice (a 1M-contact preview took twice
        # its count).
        totals = matching.order_by().aggregate(
            count=Count("pk"), sendable=Count("pk", filter=sendable_q)
        )
        count, sendable = totals["count"], totals["sendable"]
    else:
        count, sendable = matching.count(), None
    sample = tuple(matching.select_related("lifecycle_stage").order_by("-pk")[:sample_size])
    return SegmentPreview(count=count, sample=sample, topic=topic, sendable_count=sendable)


#: The contact table in the outer query's FROM (subqueries alias theirs: U0, V0 …).
_CONTACT_FROM = re.compile(r'FROM "crm_contact"(?= (?:LEFT|INNER|WHERE|GROUP|ORDER)|$)')


def _preview_estimated(
    definition: Any, topic: ConsentTopic | None, sendable_q: Q | None, sample_size: int
) -> SegmentPreview:
    """Count a random ~1% of the contacts' pages (TABLESAMPLE SYSTEM) and scale it up.

    Compiled for a few contacts (not CompileContext.whole_table): each sampled contact
    is probed through the indexes, so the cost follows the sample, not the table.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
            (Contact._meta.db_table,),
        )
        row = cursor.fetchone()
    # reltuples is -1 before the table's first ANALYZE: then read it all.
    total = row[0] if row and row[0] > 0 else PREVIEW_ESTIMATE_SAMPLE
    percent = min(100.0, max(0.01, 100.0 * PREVIEW_ESTIMATE_SAMPLE / total))
    condition = compile_definition(definition, context=CompileContext())
    flags = Contact.objects.order_by().annotate(
        matches=Case(When(condition, then=Value(1)), default=Value(0)),
        # Alone, not "condition AND sendable": that would evaluate the condition twice.
        sendable=Case(When(sendable_q or Q(), then=Value(1)), default=Value(0)),
    )
    sampled = _sampled(flags.values("pk", "matches", "sendable"), percent)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(sampled.matches), 0), "
            "coalesce(sum(sampled.matches * sampled.sendable), 0), "
            "(array_agg(sampled.pk ORDER BY sampled.pk DESC) "
            "FILTER (WHERE sampled.matches = 1))[1:%s] "
            f"FROM ({sampled[0]}) AS sampled",
            (sample_size, *sampled[1]),
        )
        _read, matches, sendable, newest = cursor.fetchone()
    # SYSTEM reads each page with probability `percent`: scale by it, not by reltuples
    # (an estimate itself), so that 100% is exact.
    scale = 100.0 / percent
    sample = Contact.objects.filter(pk__in=newest or []).select_related("lifecycle_stage")
    return SegmentPreview(
        count=_rounded(matches * scale),
        sample=tuple(sample.order_by("-pk")),
        topic=topic,
        sendable_count=_rounded(sendable * scale) if sendable_q is not None else None,
        estimated=True,
        sampled_percent=round(percent, 2),
    )


def _sampled(queryset: QuerySet, percent: float) -> tuple[str, tuple]:
    """The queryset's SQL reading a TABLESAMPLE of the contact table."""
    sql, params = queryset.query.sql_with_params()
    # REPEATABLE: the same definition previewed twice gives the same figure.
    sql, replaced = _CONTACT_FROM.subn(
        f'FROM "crm_contact" TABLESAMPLE SYSTEM ({percent:.4f}) REPEATABLE (1)', sql, count=1
    )
    if not replaced:
        raise ValueError("The contact table is not in the query's FROM.")
    return sql, params


def _rounded(value: float) -> int:
    """An estimate to two significant figures: 142,673 reads as 140,000."""
    if value < 100:
        return round(value)
    digits = len(str(int(value))) - 2
    return int(round(value, -digits))
