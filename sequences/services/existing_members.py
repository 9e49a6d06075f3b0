"""“Include existing members”: enroll a segment's current members when a sequence goes live.

A `segment_entered` trigger with `include_existing_members` lets in the people already
in the segment. If the segment has not been evaluated yet, its first evaluation records
their entries (`initial: true`) and matching enrolls them. If it has (segments are
evaluated seconds after saving, so this is the usual case), the first activation of the
sequence enrolls its current members here, in batches, through the same re-enrollment
and audience checks as every trigger. The activation review counts them beforehand.
"""

import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from crm.models import Contact, SegmentMembership
from sequences.conditions import contact_facts
from sequences.models import Enrollment, Sequence, Trigger
from sequences.services.enrollments import (
    audience_admits,
    audience_segment_members,
    enrollment_build,
    enrollments_bulk_save,
    in_audience_segment,
    reenrollment_allows,
)
from sequences.services.moves import enqueue_run

BATCH = 500
TASK = "sequences.tasks.enroll_existing_members_task"


def existing_members_pending(trigger: Trigger) -> bool:
    """Does activating enroll this trigger's current members (rather than the first evaluation)?"""
    return (
        trigger.type == Trigger.Type.SEGMENT_ENTERED
        and trigger.include_existing_members
        and trigger.segment is not None
        and trigger.segment.last_evaluated_at is not None
    )


def existing_members(trigger: Trigger) -> QuerySet[Contact]:
    """The segment's current members not live in the sequence, within its audience segment."""
    sequence = trigger.sequence
    member = SegmentMembership.objects.filter(
        segment_id=trigger.segment_id, contact=OuterRef("pk"), exited_at__isnull=True
    )
    contacts = Contact.objects.filter(Exists(member))
    if sequence.audience_segment_id:
        audience = SegmentMembership.objects.filter(
            segment_id=sequence.audience_segment_id, contact=OuterRef("pk"), exited_at__isnull=True
        )
        contacts = contacts.filter(Exists(audience))
    live = Enrollment.objects.filter(
        sequence=sequence, contact=OuterRef("pk"), state__in=Enrollment.LIVE_STATES
    )
    return contacts.exclude(Exists(live))


def existing_members_enroll(*, trigger_pk: int, now: datetime.datetime | None = None) -> int:
    """Enroll the trigger's segment members into its (active) sequence; return how many."""
    now = now or timezone.now()
    trigger = (
        Trigger.objects.select_related("sequence__current_version", "segment")
        .filter(pk=trigger_pk)
        .first()
    )
    if trigger is None or not existing_members_pending(trigger):
        return 0
    sequence = trigger.sequence
    if sequence.status != Sequence.Status.ACTIVE or sequence.current_version is None:
        return 0
    candidates = existing_members(trigger).order_by("pk")
    entered, after = 0, 0
    while True:
        batch = list(
            candidates.filter(pk__gt=after)
            .select_related("company")
            .prefetch_related("tags")[:BATCH]
        )
        if not batch:
            return entered
        entered += _enroll_batch(trigger, batch, now)
        after = batch[-1].pk


@transaction.atomic
def _enroll_batch(trigger: Trigger, contacts: list[Contact], now: datetime.datetime) -> int:
    sequence = trigger.sequence
    previous: dict[int, Enrollment] = {}
    rows = Enrollment.objects.filter(sequence=sequence, contact__in=contacts)
    for enrollment in rows.order_by("-enrolled_at", "-pk"):
        previous.setdefault(enrollment.contact_id, enrollment)
    members = audience_segment_members([sequence], [contact.pk for contact in contacts])
    properties = {
        "kind": "segment_entered",
        "segment": trigger.segment.key,
        "existing_member": True,
    }
    new = [
        enrollment_build(contact=contact, sequence=sequence, now=now, trigger_properties=properties)
        for contact in contacts
        if reenrollment_allows(sequence, previous.get(contact.pk), now)
        and audience_admits(sequence, contact_facts(contact))
        and in_audience_segment(sequence, contact.pk, members)
    ]
    saved = enrollments_bulk_save(new, now)
    enqueue_run([enrollment.pk for enrollment in saved])
    return len(saved)
