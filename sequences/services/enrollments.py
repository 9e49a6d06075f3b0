"""Creating and ending enrollments, and writing their history."""

import datetime
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import SegmentMembership
from crm.segment_selectors import segment_current_memberships
from crm.set_inserts import rows_insert
from sequences.conditions import contact_facts, contact_matches
from sequences.models import Enrollment, EnrollmentEvent, Sequence, SequenceVersion
from sequences.reports.facts import report_counts_add_ended, report_counts_add_enrolled
from sequences.services.moves import enqueue_run

State = Enrollment.State


def enrollment_event_add(
    *,
    enrollment: Enrollment,
    kind: str,
    now: datetime.datetime,
    step: str = "",
    reason: str = "",
    data: dict | None = None,
) -> EnrollmentEvent:
    """Append one line to the enrollment's history."""
    return EnrollmentEvent.objects.create(
        enrollment=enrollment,
        kind=kind,
        step=step,
        reason=reason[:300],
        data=data or {},
        occurred_at=now,
    )


def enrollment_end(
    *, enrollment: Enrollment, state: str, reason: str, now: datetime.datetime
) -> bool:
    """End a live enrollment with a state and reason; False if it had already ended."""
    ended = Enrollment.objects.filter(pk=enrollment.pk, state__in=Enrollment.LIVE_STATES).update(
        state=state,
        reason=reason[:200],
        ended_at=now,
        due_at=None,
        waiting_for={},
        needs_review=state == State.COMPLETED,
    )
    if ended:
        enrollment.state, enrollment.reason, enrollment.ended_at = state, reason, now
        enrollment_event_add(enrollment=enrollment, kind=state, reason=reason, now=now)
        report_counts_add_ended(rows=[(enrollment, state, reason)], now=now)
    return bool(ended)


def audience_admits(sequence: Sequence, facts: dict) -> bool:
    """Does the contact (as plain facts) meet every audience condition?"""
    return contact_matches(sequence.audience_conditions, facts)


def audience_segment_admits(sequence: Sequence, contact_id: int) -> bool:
    """Is the contact a current member of the sequence's audience segment (if it has one)?"""
    if sequence.audience_segment_id is None:
        return True
    members = segment_current_memberships(sequence.audience_segment_id)
    return members.filter(contact_id=contact_id).exists()


def audience_segment_members(sequences: Iterable[Sequence], contact_ids) -> set[tuple[int, int]]:
    """(segment pk, contact pk) for these contacts' memberships of the sequences' audiences."""
    segment_ids = {s.audience_segment_id for s in sequences if s.audience_segment_id}
    if not segment_ids:
        return set()
    rows = SegmentMembership.objects.filter(
        segment_id__in=segment_ids, contact_id__in=contact_ids, exited_at__isnull=True
    )
    return set(rows.values_list("segment_id", "contact_id"))


def in_audience_segment(sequence: Sequence, contact_id: int, members: set) -> bool:
    """Given audience_segment_members(...), may this contact be in the sequence?"""
    segment_id = sequence.audience_segment_id
    return segment_id is None or (segment_id, contact_id) in members


def reenrollment_allows(
    sequence: Sequence, previous: Enrollment | None, now: datetime.datetime
) -> bool:
    """May the contact enter again, given their latest earlier enrollment (None: never)?"""
    if previous is None:
        return True
    if previous.is_live or sequence.reenrollment == Sequence.Reenrollment.NEVER:
        return False
    gap = datetime.timedelta(days=sequence.reenrollment_min_gap_days)
    since = previous.ended_at if sequence.reenrollment == "after_exit" else previous.enrolled_at
    return since is not None and now - since >= gap


def enrollment_build(
    *,
    contact,
    sequence: Sequence,
    now: datetime.datetime,
    trigger_properties: dict,
    trigger_on: datetime.date | None = None,
) -> Enrollment:
    """An unsaved enrollment at the first step of the sequence's current version."""
    version = sequence.current_version
    expires_at = (
        now + datetime.timedelta(days=sequence.max_duration_days)
        if sequence.max_duration_days
        else None
    )
    return Enrollment(
        contact=contact,
        sequence=sequence,
        version=version,
        state=State.ACTIVE,
        current_step=version.steps[0]["key"] if version.steps else "",
        due_at=now,
        enrolled_at=now,
        expires_at=expires_at,
        trigger_properties=dict(trigger_properties),
        trigger_on=trigger_on,
    )


@transaction.atomic
def enrollment_create(
    *,
    contact,
    sequence: Sequence,
    source: str = "manual",
    trigger_properties: dict | None = None,
    now: datetime.datetime | None = None,
) -> Enrollment:
    """Enroll one contact by hand (admin or API), applying re-enrollment policy and audience."""
    now = now or timezone.now()
    if sequence.status != Sequence.Status.ACTIVE or sequence.current_version is None:
        raise ValidationError(
            "Only an active sequence can take new contacts.", code="sequence_inactive"
        )
    previous = Enrollment.objects.filter(contact=contact, sequence=sequence).first()
    if previous is not None and previous.is_live:
        raise ValidationError("The contact is already in this sequence.", code="already_enrolled")
    if not reenrollment_allows(sequence, previous, now):
        raise ValidationError(
            "The re-enrollment policy does not allow this contact in again.",
            code="reenrollment_refused",
        )
    if not audience_admits(sequence, contact_facts(contact)) or not audience_segment_admits(
        sequence, contact.pk
    ):
        raise ValidationError(
            "The contact is outside this sequence's audience.", code="outside_audience"
        )
    enrollment = enrollment_build(
        contact=contact, sequence=sequence, now=now, trigger_properties=trigger_properties or {}
    )
    try:
        with transaction.atomic():
            enrollment.save()
    except IntegrityError as exc:
        raise ValidationError(
            "The contact is already in this sequence.", code="already_enrolled"
        ) from exc
    enrollment_event_add(enrollment=enrollment, kind="entered", reason=source, now=now)
    report_counts_add_enrolled(enrollments=[enrollment])
    enqueue_run([enrollment.pk])
    return enrollment


def enrollments_bulk_save(
    enrollments: list[Enrollment], now: datetime.datetime
) -> list[Enrollment]:
    """Insert new enrollments; a contact already live in a sequence is left out, not an error."""
    if not enrollments:
        return []
    try:
        with transaction.atomic():
            rows_insert(Enrollment, enrollments)
            saved = enrollments
    except IntegrityError:
        # Another process enrolled one of them meanwhile: insert one by one, once.
        saved = []
        for enrollment in enrollments:
            try:
                with transaction.atomic():
                    enrollment.save()
                saved.append(enrollment)
            except IntegrityError:
                continue
    rows_insert(
        EnrollmentEvent,
        [
            EnrollmentEvent(enrollment=e, kind="entered", reason="trigger", occurred_at=now)
            for e in saved
        ],
    )
    report_counts_add_enrolled(enrollments=saved)
    return saved


def events_bulk_add(rows: Iterable[tuple[Enrollment, str, str]], now: datetime.datetime) -> None:
    """Append (enrollment, kind, reason) lines to many histories in one query."""
    rows_insert(
        EnrollmentEvent,
        [
            EnrollmentEvent(enrollment=enrollment, kind=kind, reason=reason[:300], occurred_at=now)
            for enrollment, kind, reason in rows
        ],
    )


def enrollments_attach_sequences(
    enrollments: list[Enrollment], *, related: tuple[str, ...], versions: bool = False
) -> None:
    """Give these enrollments their sequences (and versions), each read once.

    A batch has a handful of sequences and versions. Joined onto every enrollment row
    (select_related) they were read, and their JSON (the steps, audience, goals, exits)
    decoded, once per enrollment: a third of a send batch's CPU (cProfile,
    docs/performance.md). `related`: what to select with each sequence.
    """
    sequences = Sequence.objects.select_related(*related).in_bulk(
        {enrollment.sequence_id for enrollment in enrollments}
    )
    sequence_field = Enrollment.sequence.field
    for enrollment in enrollments:
        sequence_field.set_cached_value(enrollment, sequences[enrollment.sequence_id])
    if not versions:
        return
    found = SequenceVersion.objects.in_bulk({enrollment.version_id for enrollment in enrollments})
    for version in found.values():
        SequenceVersion.sequence.field.set_cached_value(version, sequences[version.sequence_id])
    version_field = Enrollment.version.field
    for enrollment in enrollments:
        version_field.set_cached_value(enrollment, found[enrollment.version_id])
