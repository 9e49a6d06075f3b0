"""Rising intent: a contact far more engaged this week than their own baseline.

Engagement is what the person did (activities that count as engagement, machine opens
excluded), counted in the last RECENT_DAYS and in the BASELINE_WEEKS weeks before. A
contact is rising when the recent count is at least MIN_RECENT and at least RATIO times
their weekly baseline. One GROUP BY (contact, kind) with conditional counts.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from crm.models import Activity
from crm.services.activities import NOT_ENGAGEMENT_KINDS

RECENT_DAYS = 7
BASELINE_WEEKS = 8
MIN_RECENT = 5
RATIO = 3.0


@dataclass(frozen=True)
class RisingIntent:
    recent: int
    weekly_baseline: float
    #: (kind, this week, weekly baseline), the biggest rises first.
    behaviours: tuple[tuple[str, int, float], ...]

    @property
    def is_rising(self) -> bool:
        return self.recent >= MIN_RECENT and self.recent >= RATIO * self.weekly_baseline


def rising_intent(
    *, contact_ids: list[int], now: datetime.datetime | None = None
) -> dict[int, RisingIntent]:
    """Each listed contact's recent vs baseline engagement (only contacts who are rising)."""
    now = now or timezone.now()
    recent_from = now - datetime.timedelta(days=RECENT_DAYS)
    baseline_from = recent_from - datetime.timedelta(weeks=BASELINE_WEEKS)
    rows = (
        Activity.objects.filter(
            contact_id__in=contact_ids, occurred_at__gte=baseline_from, occurred_at__lt=now
        )
        .exclude(kind__in=NOT_ENGAGEMENT_KINDS)
        .filter(Q(properties__is_machine_open__isnull=True) | ~Q(properties__is_machine_open=True))
        .order_by()
        .values("contact_id", "kind")
        .annotate(
            recent=Count("pk", filter=Q(occurred_at__gte=recent_from)),
            baseline=Count("pk", filter=Q(occurred_at__lt=recent_from)),
        )
        .values_list("contact_id", "kind", "recent", "baseline")
    )
    per_contact: dict[int, list[tuple[str, int, float]]] = {}
    for contact_id, kind, recent, baseline in rows:
        per_contact.setdefault(contact_id, []).append((kind, recent, baseline / BASELINE_WEEKS))
    result = {}
    for contact_id, kinds in per_contact.items():
        intent = RisingIntent(
            recent=sum(recent for _, recent, _ in kinds),
            weekly_baseline=round(sum(weekly for _, _, weekly in kinds), 2),
            behaviours=tuple(
                sorted(
                    ((kind, recent, round(weekly, 2)) for kind, recent, weekly in kinds if recent),
                    key=lambda item: item[2] - item[1],
                )
            ),
        )
        if intent.is_rising:
            result[contact_id] = intent
    return result
