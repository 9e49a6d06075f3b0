"""Which behaviours go with converting: lift, support, a confidence interval, corrected p.

For a conversion (an activity kind, e.g. order_placed or demo_requested), compare
- converters: contacts whose first conversion fell in the lookback, and what they did in
  the `window_days` before converting, with
- others: contacts who never converted, and what they did in the last `window_days`,
counting only contacts who did something in their window. Per behaviour (activity kind):
lift = P(convert | did it) / P(convert | did not), its 95% interval (log relative risk),
Fisher's exact p-value, and the Benjamini-Hochberg q-value over all behaviours tested
(statsmodels). This is association, not cause: people who were going to buy anyway may
simply do more of everything.

Four set-based queries whatever the number of contacts: two GROUP BY kind (converters
joined to their first conversion, and the others), and the two group sizes.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from crm.models import Activity
from crm.predictions.selectors import sql_plus_days
from crm.services.activities import NOT_ENGAGEMENT_KINDS

#: What we did to them, or what our models concluded: never a behaviour of theirs.
NOT_BEHAVIOUR = NOT_ENGAGEMENT_KINDS | {"email_sent", "email_delivered", "email_bounced"}
MIN_SUPPORT_CONTACTS = 5
Z95 = 1.959964


@dataclass(frozen=True)
class Insight:
    kind: str
    converters_with: int
    converters: int
    others_with: int
    others: int
    lift: float
    low: float
    high: float
    p_value: float
    q_value: float = 1.0

    @property
    def support(self) -> float:
        """Share of all compared contacts who did it."""
        return (self.converters_with + self.others_with) / (self.converters + self.others)

    @property
    def rate_with(self) -> float:
        return self.converters_with / max(self.converters_with + self.others_with, 1)

    @property
    def is_associated(self) -> bool:
        """Significant after correction, positively associated, and seen often enough."""
        return (
            self.q_value < 0.05
            and self.low > 1
            and self.converters_with + self.others_with >= MIN_SUPPORT_CONTACTS
        )


@dataclass(frozen=True)
class InsightReport:
    conversion_kind: str
    window_days: int
    converters: int
    others: int
    insights: tuple[Insight, ...]

    @property
    def associated(self) -> tuple[Insight, ...]:
        return tuple(insight for insight in self.insights if insight.is_associated)


def _excluded(conversion_kind: str) -> list[str]:
    return sorted({*NOT_BEHAVIOUR, conversion_kind})


def _converter_counts(conversion_kind, since, now, window_days) -> tuple[dict[str, int], int]:
    activity = Activity._meta.db_table
    excluded = _excluded(conversion_kind)
    marks = ", ".join(["%s"] * len(excluded))
    base = f"""
        FROM {activity} AS done JOIN (
            SELECT contact_id, MIN(occurred_at) AS converted_at FROM {activity}
            WHERE kind = %s AND contact_id IS NOT NULL
            GROUP BY contact_id
        ) AS conversion ON conversion.contact_id = done.contact_id
        WHERE conversion.converted_at >= %s AND conversion.converted_at < %s
        AND done.occurred_at < conversion.converted_at
        AND done.occurred_at >= {sql_plus_days("conversion.converted_at")}
        AND done.kind NOT IN ({marks})
    """
    ops = connection.ops
    params = [
        conversion_kind,
        ops.adapt_datetimefield_value(since),
        ops.adapt_datetimefield_value(now),
        -window_days,
        *excluded,
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT done.kind, COUNT(DISTINCT done.contact_id) {base} GROUP BY done.kind", params
        )
        by_kind = dict(cursor.fetchall())
        cursor.execute(f"SELECT COUNT(DISTINCT done.contact_id) {base}", params)
        total = cursor.fetchone()[0]
    return by_kind, total


def _other_counts(conversion_kind, now, window_days) -> tuple[dict[str, int], int]:
    converted = Activity.objects.filter(contact_id=OuterRef("contact_id"), kind=conversion_kind)
    recent = (
        Activity.objects.filter(
            contact__isnull=False,
            occurred_at__gte=now - datetime.timedelta(days=window_days),
            occurred_at__lt=now,
        )
        .exclude(kind__in=_excluded(conversion_kind))
        .filter(~Exists(converted))
        .order_by()
    )
    by_kind = dict(
        recent.values("kind")
        .annotate(n=Count("contact_id", distinct=True))
        .values_list("kind", "n")
    )
    total = recent.aggregate(n=Count("contact_id", distinct=True))["n"]
    return by_kind, total


def _insight(kind: str, a: int, n1: int, c: int, n0: int) -> Insight:
    b, d = n1 - a, n0 - c
    from scipy.stats import fisher_exact  # scipy.stats costs 0.7 s at start-up: load on use

    _odds, p_value = fisher_exact([[a, b], [c, d]], alternative="two-sided")
    # Haldane's correction: half a contact in each cell keeps the ratio finite.
    a_, b_, c_, d_ = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    lift = (a_ / (a_ + c_)) / (b_ / (b_ + d_))
    se = math.sqrt(1 / a_ - 1 / (a_ + c_) + 1 / b_ - 1 / (b_ + d_))
    return Insight(
        kind=kind,
        converters_with=a,
        converters=n1,
        others_with=c,
        others=n0,
        lift=lift,
        low=math.exp(math.log(lift) - Z95 * se),
        high=math.exp(math.log(lift) + Z95 * se),
        p_value=float(p_value),
    )


def insights_report(
    *,
    conversion_kind: str,
    window_days: int = 30,
    lookback_days: int = 365,
    now: datetime.datetime | None = None,
) -> InsightReport:
    """Behaviours in the days before converting, ranked by lift, with corrected q-values."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=lookback_days)
    converter_kinds, converters = _converter_counts(conversion_kind, since, now, window_days)
    other_kinds, others = _other_counts(conversion_kind, now, window_days)
    kinds = sorted(set(converter_kinds) | set(other_kinds))
    if not kinds or not converters or not others:
        return InsightReport(conversion_kind, window_days, converters, others, ())
    raw = [
        _insight(kind, converter_kinds.get(kind, 0), converters, other_kinds.get(kind, 0), others)
        for kind in kinds
    ]
    from statsmodels.stats.multitest import multipletests  # about 0.8 s to import: on use

    _reject, q_values, _s, _b = multipletests([i.p_value for i in raw], method="fdr_bh")
    insights = sorted(
        (
            Insight(**{**insight.__dict__, "q_value": float(q)})
            for insight, q in zip(raw, q_values, strict=True)
        ),
        key=lambda insight: (-insight.lift, insight.kind),
    )
    return InsightReport(conversion_kind, window_days, converters, others, tuple(insights))


def segment_definition_for(insight_kind: str, window_days: int) -> dict:
    """The segment "did <kind> in the last <window> days", for the builder's prefill."""
    # One small function, so the unified condition language can take it over in one place.
    return {
        "match": "all",
        "conditions": [
            {
                "field": "activity",
                "operator": "at_least",
                "kind": insight_kind,
                "count": 1,
                "days": window_days,
            }
        ],
    }
