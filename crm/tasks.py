"""django-q2 entry points for crm: fetch, guard, call one service, return a short outcome."""

import datetime
import logging

from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from crm.models import Contact, Segment, Suppression
from crm.receivers import REFRESH_CHUNK, REFRESH_TASK
from crm.segments.compiler import SegmentCompileError
from crm.services.imports import contact_imports_expire
from crm.services.segments import (
    EVALUATE_TASK,
    MembershipChanges,
    segment_evaluate,
    segment_memberships_refresh,
)

logger = logging.getLogger(__name__)

#: The changed-contacts sweep runs every minute and looks back further, since django-q2
#: may start a schedule up to ~30 s late (stack.md, pitfall 5); re-checking is harmless.
RECENTLY_CHANGED_EVERY_MINUTES = 1
RECENTLY_CHANGED_LOOKBACK_MINUTES = 3
#: Full evaluations catch what time alone changes ("no email opened in 90 days").
EVALUATE_SEGMENTS_EVERY_MINUTES = 15


def refresh_segment_memberships_task(contact_ids: list[int]) -> str:
    """Re-check the contacts of one recorded batch against every segment."""
    if not Segment.objects.exists():
        return "no segments"
    changes = segment_memberships_refresh(contact_ids=[int(pk) for pk in contact_ids])
    return f"{changes.entered} entered, {changes.exited} exited"


def evaluate_segment_task(
    segment_pk: int, resume_at: int | None = None, entered: int = 0, exited: int = 0
) -> str:
    """Fully evaluate one segment (after it was created or its definition changed).

    A big segment is evaluated in parts that each use at most half the task timeout:
    each part queues the next one with where to resume and what changed so far.
    """
    segment = Segment.objects.filter(pk=int(segment_pk)).first()
    if segment is None:
        return "segment deleted"
    try:
        evaluation = segment_evaluate(
            segment=segment,
            resume_at=resume_at,
            time_budget=datetime.timedelta(seconds=settings.Q_CLUSTER["timeout"] / 2),
            carried=MembershipChanges(int(entered), int(exited)),
        )
    except SegmentCompileError as error:
        # It names something deleted since it was saved; the admin shows the same problem.
        logger.warning("Segment %s cannot be evaluated: %s", segment.pk, error)
        return f"cannot evaluate: {error}"
    if evaluation.resume_at is not None:
        async_task(
            EVALUATE_TASK, segment.pk, evaluation.resume_at, evaluation.entered, evaluation.exited
        )
        return f"continues from contact {evaluation.resume_at}"
    return (
        f"{evaluation.member_count} members, {evaluation.entered} entered, "
        f"{evaluation.exited} exited"
    )


def evaluate_segments_task() -> str:
    """Queue a full evaluation of every segment: the sweep for time-based conditions.

    One task per segment, so workers share the sweep and no task outlives its timeout.
    """
    pks = list(Segment.objects.order_by("pk").values_list("pk", flat=True))
    for pk in pks:
        async_task(EVALUATE_TASK, pk)
    return f"queued {len(pks)} segment evaluations"


def refresh_recently_changed_contacts_task(
    lookback_minutes: int = RECENTLY_CHANGED_LOOKBACK_MINUTES,
) -> str:
    """Re-check contacts edited or suppressed lately; those changes record no activity.

    The contacts are found with two indexed reads and handed to the per-batch refresh
    task in chunks (as many as an import touched), so this sweep itself stays small.
    """
    if not Segment.objects.exists():
        return "no segments"
    since = timezone.now() - datetime.timedelta(minutes=int(lookback_minutes))
    changed = set(Contact.objects.filter(updated_at__gte=since).values_list("pk", flat=True))
    suppressed = Suppression.objects.filter(created_at__gte=since).exclude(email="")
    changed.update(
        Contact.objects.filter(email__in=suppressed.values("email")).values_list("pk", flat=True)
    )
    ids = sorted(changed)
    for start in range(0, len(ids), REFRESH_CHUNK):
        async_task(REFRESH_TASK, ids[start : start + REFRESH_CHUNK])
    return f"{len(ids)} contacts queued for a segment refresh"


def expire_staged_imports_task() -> str:
    """Delete previewed CSV imports nobody confirmed in time (personal data kept no longer
    than the confirm window, even when no one uploads again)."""
    return f"deleted {contact_imports_expire()} expired staged imports"
