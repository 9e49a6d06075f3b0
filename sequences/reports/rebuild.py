"""Rebuild every report fact and aggregate from the enrollments, the ledger and activities.

For back-filling (reports added to an existing install, or rates changed): the
incremental writers (facts.py) are fed the history in order, in chunks, so a rebuilt
report equals one counted live. Runs in one transaction; run it with the workers
stopped, or counts written meanwhile may be counted twice.
"""

import logging

from django.conf import settings
from django.db import transaction

from crm.models import Activity
from sequences.models import Enrollment
from sequences.reports.facts import (
    ENDED_STATES,
    HANDOFF_CLOSED,
    report_counts_add_ended,
    report_counts_add_enrolled,
)
from sequences.reports.models import (
    Conversion,
    EnrollmentFact,
    HandoffFact,
    MessageFact,
    ReportCount,
    SegmentConversionCount,
)
from sequences.reports.receivers import count_activities

logger = logging.getLogger(__name__)
CHUNK = 2000
K = Activity.Kind


def report_kinds() -> list[str]:
    """The activity kinds the reports count."""
    return sorted(
        {
            K.EMAIL_SENT,
            K.EMAIL_DELIVERED,
            K.EMAIL_OPENED,
            K.EMAIL_CLICKED,
            K.DEAL_STAGE_CHANGED,
            K.HANDED_OFF,
            HANDOFF_CLOSED,
            *settings.REPORT_ORDER_KINDS,
            *settings.REPORT_REFUND_KINDS,
        }
    )


@transaction.atomic
def reports_rebuild(*, chunk: int = CHUNK) -> dict[str, int]:
    """Empty the report tables and count everything again; return how many rows were read."""
    for model in (
        ReportCount,
        SegmentConversionCount,
        Conversion,
        HandoffFact,
        MessageFact,
        EnrollmentFact,
    ):
        model.objects.all().delete()
    enrollments = _enrollments(chunk)
    activities = _activities(chunk)
    logger.info("reports rebuilt from %s enrollments, %s activities", enrollments, activities)
    return {"enrollments": enrollments, "activities": activities}


def _enrollments(chunk: int) -> int:
    seen, last = 0, 0
    while True:
        rows = list(
            Enrollment.objects.filter(pk__gt=last).select_related("sequence").order_by("pk")[:chunk]
        )
        if not rows:
            return seen
        report_counts_add_enrolled(enrollments=rows)
        ended = [(e, e.state, e.reason) for e in rows if e.state in ENDED_STATES and e.ended_at]
        if ended:
            report_counts_add_ended(rows=ended, now=max(e.ended_at for e, _, _ in ended))
        seen, last = seen + len(rows), rows[-1].pk


def _activities(chunk: int) -> int:
    """Every counted activity, oldest first (sends before their opens, orders before refunds)."""
    rows = Activity.objects.filter(kind__in=report_kinds(), contact__isnull=False)
    seen, after = 0, None
    while True:
        page = rows.order_by("occurred_at", "pk")
        if after is not None:
            page = page.filter(occurred_at__gte=after[0]).exclude(
                occurred_at=after[0], pk__lte=after[1]
            )
        batch = list(page[:chunk])
        if not batch:
            return seen
        count_activities(sender=Activity, activities=batch)
        seen, after = seen + len(batch), (batch[-1].occurred_at, batch[-1].pk)
