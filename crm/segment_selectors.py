"""Reads about segments: who matches a definition, who is a tracked member, the preview."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
COUNT_HISTORY_LENGTH = 30


def segment_contacts(
    *, segment: Segment | None = None, definition: Any = None, context: CompileContext | None = None
) -> QuerySet[Contact]:
    """The contacts matching a segment (or a definition) right now, in one query."""
    if segment is not None:
        return Contact.objects.filter(compile_segment(segment, context=context))
    return Contact.objects.filter(compile_definition(definition, context=context))


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


@dataclass(frozen=True)
class SegmentPreview:
    """What the builder shows: problems, or the count, a sample and the sendable count."""

    problems: tuple[DefinitionProblem, ...] = ()
    count: int = 0
    sample: tuple[Contact, ...] = ()
    milliseconds: int = 0
    topic: ConsentTopic | None = None
    sendable_count: int | None = None

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
    matching = segment_contacts(definition=definition)
    if topic:
        # One pass over the segment counts both: counting the sendable ones in a second
        # query evaluated the whole definition twice (a 1M-contact preview took twice
        # its count).
        sendable_q = Q(consent_granted_exists(topic)) & ~Q(contact_is_suppressed_expression())
        totals = matching.order_by().aggregate(
            count=Count("pk"), sendable=Count("pk", filter=sendable_q)
        )
        count, sendable = totals["count"], totals["sendable"]
    else:
        count, sendable = matching.count(), None
    sample = tuple(matching.select_related("lifecycle_stage").order_by("-pk")[:sample_size])
    elapsed = round((time.perf_counter() - started) * 1000)
    return SegmentPreview(
        count=count, sample=sample, milliseconds=elapsed, topic=topic, sendable_count=sendable
    )
