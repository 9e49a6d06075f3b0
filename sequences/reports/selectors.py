"""Reading the reports: every figure comes from the aggregate tables, never the activity log.

A sequence's results page runs a fixed handful of queries over `ReportCount` (rows per
day x step x variant x metric of one sequence), whatever the number of contacts.
docs/reporting.md explains each figure.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, Sum

from crm.models import Segment, SegmentMembership
from sequences.models import Sequence, SequenceVersion
from sequences.reports.facts import FEEDBACK, HANDOFF_OUTCOMES
from sequences.reports.models import (
    EnrollmentFact,
    ReportCount,
    SegmentConversionCount,
)
from sequences.reports.stats import (
    Lift,
    RevenueLift,
    Sample,
    conversion_lift,
    revenue_lift,
    variants_p_value,
)

FUNNEL_STAGES = ("sent", "delivered", "opened", "clicked")


@dataclass(frozen=True)
class Period:
    """Days from `since` to `until`, both included; None is open-ended."""

    since: datetime.date | None = None
    until: datetime.date | None = None

    def parts(self) -> list[tuple[Q, int]]:
        """The counter rows that add up to the period, each with its sign (+1 or -1).

        Whole months inside the period are read from their month rows. A month the period
        covers in part is read by day when that is the smaller part, else as its month
        row minus the days outside the period: "the last 90 days" up to today reads this
        month's row minus the days after today (none yet), not up to 30 day rows.
        """
        since, until = self.since, self.until
        if since and until and since > until:
            return []
        # Whole months: from the first month starting on or after `since` up to the month
        # `until` ends (open ends: every month that way).
        first = since if since is None or since.day == 1 else _next_month(since)
        end = None if until is None else (until + datetime.timedelta(days=1)).replace(day=1)
        whole = first is None or end is None or first < end
        parts = []
        if whole:
            months = Q(span="m")
            if first is not None:
                months &= Q(day__gte=first)
            if end is not None:
                months &= Q(day__lt=end)
            parts.append((months, 1))
        elif since.replace(day=1) == until.replace(day=1):
            return _partial_month(since, until)  # within one month
        if since is not None and since < first:
            parts += _partial_month(since, first - datetime.timedelta(days=1))
        if until is not None and until >= end:
            parts += _partial_month(end, until)
        return parts

    def sums(self, queryset, fields: tuple[str, ...]) -> list[dict]:
        """Sum count and amount_minor by `fields` over the period, in one query.

        Each part (months, a partial month's days or its month row minus the days
        outside) is its own range of the index, joined with UNION ALL: one range per
        part lets PostgreSQL answer from the index alone, where an OR of them reads the
        table too. The parts' signed sums of the same key are added here.
        """
        merged: dict[tuple, dict] = {}
        parts = [
            queryset.filter(part)
            .values(*fields)
            .annotate(count=Sum("count") * sign, amount=Sum("amount_minor") * sign)
            .order_by()
            for part, sign in self.parts()
        ]
        if not parts:
            return []
        rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        for row in rows:
            key = tuple(row[name] for name in fields)
            line = merged.setdefault(
                key, {**dict(zip(fields, key, strict=True)), "count": 0, "amount": 0}
            )
            line["count"] += row["count"] or 0
            line["amount"] += row["amount"] or 0
        return list(merged.values())

    def filter_days(self, queryset):
        """The day rows of the period (for figures per day)."""
        queryset = queryset.filter(span="d")
        if self.since:
            queryset = queryset.filter(day__gte=self.since)
        if self.until:
            queryset = queryset.filter(day__lte=self.until)
        return queryset


def _next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)


def _partial_month(low: datetime.date, high: datetime.date) -> list[tuple[Q, int]]:
    """Days `low` to `high` (both included) of one month, in the fewest rows: the days
    themselves, or the month's row minus the days before `low` and after `high`."""
    month, following = low.replace(day=1), _next_month(low)
    inside = (high - low).days + 1
    if 2 * inside <= (following - month).days:
        return [(Q(span="d", day__gte=low, day__lte=high), 1)]
    parts = [(Q(span="m", day=month), 1)]
    if low > month:
        parts.append((Q(span="d", day__gte=month, day__lt=low), -1))
    if high < following - datetime.timedelta(days=1):
        parts.append((Q(span="d", day__gt=high, day__lt=following), -1))
    return parts


@dataclass
class Figures:
    """Counts and amounts (report-currency cents) by metric."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    amounts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, metric: str, count: int, amount: int) -> None:
        self.counts[metric] += count or 0
        self.amounts[metric] += amount or 0


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _money(minor: int) -> float:
    return round(minor / 100, 2)


def _rows(
    *, sequence_pks, period: Period, version_pk: int | None = None, whole_sequence: bool = False
):
    rows = ReportCount.objects.filter(sequence_pk__in=sequence_pks)
    if whole_sequence:
        rows = rows.filter(step="")
    if version_pk:
        rows = rows.filter(version_pk=version_pk)
    return period.sums(rows, ("sequence_pk", "step", "variant", "cohort", "metric"))


def _email_steps(sequence: Sequence, version_pk: int | None) -> list[dict]:
    version = (
        SequenceVersion.objects.filter(pk=version_pk).first()
        if version_pk
        else sequence.current_version
    )
    steps = version.steps if version else []
    return [step for step in steps if step.get("type") == "send_email"]


def sequence_results(
    *,
    sequence: Sequence,
    period: Period = Period(),
    version_pk: int | None = None,
    segment: Segment | None = None,
) -> dict:
    """Funnel, steps, variants, exits, attribution, holdout and sales figures of a sequence.

    With a segment, the people figures (the funnel, the holdout groups, their lifts and the
    incremental attribution) count only enrollments of the segment's current members
    (`_segment_cohorts`); emails per step, touch credit and sales stay the whole sequence's.
    """
    cohorts = {"mailed": Figures(), "holdout": Figures()}
    # Sequence-level rows (step ""): emails, credit and handoffs are also counted per step.
    whole = Figures()
    steps: dict[str, Figures] = defaultdict(Figures)
    variants: dict[tuple[str, str], Figures] = defaultdict(Figures)
    exits: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in _rows(sequence_pks=[sequence.pk], period=period, version_pk=version_pk):
        metric, count, amount = row["metric"], row["count"], row["amount"]
        if metric.startswith("ended:"):
            _, state, reason = metric.split(":", 2)
            exits[(state, reason, row["step"])] += count
            continue
        if not row["step"]:
            whole.add(metric, count, amount)
        if row["cohort"] in cohorts and not row["step"]:
            cohorts[row["cohort"]].add(metric, count, amount)
        if row["step"]:
            steps[row["step"]].add(metric, count, amount)
            if row["variant"]:
                variants[(row["step"], row["variant"])].add(metric, count, amount)
    if segment is not None:
        for name, figures in _segment_cohorts(sequence, period, version_pk, segment).items():
            # Sales figures are counted per cohort only in the aggregates: kept whole.
            for metric in ("deals_opened", "deals_won"):
                figures.add(metric, cohorts[name].counts[metric], cohorts[name].amounts[metric])
            cohorts[name] = figures
    mailed = cohorts["mailed"]
    return {
        "sequence": {"key": sequence.key, "name": sequence.name, "pk": sequence.pk},
        "period": {"since": period.since, "until": period.until},
        "version": version_pk,
        "segment": {"key": segment.key, "name": segment.name} if segment else None,
        "currency": settings.REPORT_CURRENCY,
        "funnel": _funnel(whole, mailed),
        "steps": _steps(sequence, version_pk, steps, variants, exits),
        "exits": [
            {"state": state, "reason": reason, "step": step, "count": count}
            for (state, reason, step), count in sorted(exits.items(), key=lambda item: -item[1])
        ],
        "attribution": _attribution(whole, cohorts),
        "holdout": _holdout(sequence, cohorts),
        "sales": {
            "handoffs": whole.counts["handoffs"],
            **{f"handoffs_{o}": whole.counts[f"handoff_{o}"] for o in HANDOFF_OUTCOMES},
            "deals_opened": mailed.counts["deals_opened"],
            "deals_opened_amount": _money(mailed.amounts["deals_opened"]),
            "deals_won": mailed.counts["deals_won"],
            "deals_won_amount": _money(mailed.amounts["deals_won"]),
        },
    }


#: EnrollmentFact aggregates → the cohort metric the daily counters hold for them.
SEGMENT_COHORT_METRICS = {
    "enrolled": Count("pk"),
    "people_emailed": Count("pk", filter=Q(emailed_at__isnull=False)),
    "people_delivered": Count("pk", filter=Q(delivered_at__isnull=False)),
    "people_opened": Count("pk", filter=Q(opened_at__isnull=False)),
    "people_clicked": Count("pk", filter=Q(clicked_at__isnull=False)),
    "goal_converted": Count("pk", filter=Q(end_state="converted")),
    "cohort_converted": Count("pk", filter=Q(orders__gt=0)),
}


def _segment_cohorts(
    sequence: Sequence, period: Period, version_pk: int | None, segment: Segment
) -> dict[str, Figures]:
    """The cohort figures of the enrollments of `segment`'s current members, in one query.

    The daily counters have no segment (a contact is in many, and membership changes),
    so this reads the enrollment facts: one aggregate query over this sequence's
    enrollments that entered in the period (index enrollmentfact_seq_idx), each
    checked against the segment's current members (the memberships' partial index).
    Its cost grows with the sequence's enrollments in the period, not with the activity
    log or the segment's size.
    """
    rows = EnrollmentFact.objects.filter(sequence=sequence).filter(
        Exists(
            SegmentMembership.objects.filter(
                segment=segment, contact_id=OuterRef("contact_id"), exited_at__isnull=True
            )
        )
    )
    if period.since:
        rows = rows.filter(enrolled_at__gte=_utc_midnight(period.since))
    if period.until:
        rows = rows.filter(enrolled_at__lt=_utc_midnight(period.until, days=1))
    if version_pk:
        rows = rows.filter(version_pk=version_pk)
    cohorts = {"mailed": Figures(), "holdout": Figures()}
    grouped = rows.values("is_holdout").annotate(
        **SEGMENT_COHORT_METRICS,
        revenue=Sum("revenue_minor"),
        squares=Sum(F("revenue_minor") * F("revenue_minor")),
    )
    for row in grouped.order_by():
        figures = cohorts["holdout" if row["is_holdout"] else "mailed"]
        for metric in SEGMENT_COHORT_METRICS:
            figures.add(metric, row[metric], 0)
        figures.add("cohort_revenue", 0, row["revenue"])
        figures.add("cohort_revenue_sq", 0, row["squares"])
    return cohorts


def _utc_midnight(day: datetime.date, days: int = 0) -> datetime.datetime:
    """The UTC midnight starting `day` (+ days): report days are UTC days."""
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    return start + datetime.timedelta(days=days)


def _funnel(total: Figures, mailed: Figures) -> list[dict]:
    """The mailed group's people: enrolled → sent → delivered → opened → clicked → converted.

    Each stage counts contacts (enrollments) who got at least that far, so every stage is
    a share of the one before; machine opens count emails, beside the funnel.
    """
    stages = [("enrolled", mailed.counts["enrolled"], None)]
    previous = mailed.counts["enrolled"]
    for stage in FUNNEL_STAGES:
        count = mailed.counts[f"people_{'emailed' if stage == 'sent' else stage}"]
        stages.append((stage, count, _rate(count, previous)))
        previous = count
    converted = mailed.counts["goal_converted"]
    stages.append(("converted", converted, _rate(converted, mailed.counts["enrolled"])))
    funnel = [{"stage": stage, "count": count, "rate": rate} for stage, count, rate in stages]
    funnel.insert(4, {"stage": "machine_opened", "count": total.counts["machine_opened"]})
    funnel[4]["rate"] = _rate(total.counts["machine_opened"], total.counts["delivered"])
    funnel.append(
        {"stage": "revenue", "count": mailed.counts["cohort_converted"], "rate": None}
        | {"amount": _money(mailed.amounts["cohort_revenue"])}
    )
    return funnel


def _steps(sequence, version_pk, steps, variants, exits) -> list[dict]:
    keys = [step["key"] for step in _email_steps(sequence, version_pk)]
    keys += sorted(set(steps) - set(keys))
    result, previous_sent = [], None
    for key in keys:
        figures = steps.get(key, Figures())
        sent = figures.counts["sent"]
        step_variants = sorted(
            (variant, item) for (step, variant), item in variants.items() if step == key
        )
        clicks = [item.counts["clicked"] for _, item in step_variants]
        sends = [item.counts["sent"] for _, item in step_variants]
        p_value = variants_p_value(clicks, sends) if len(step_variants) > 1 else None
        result.append(
            {
                "step": key,
                "sent": sent,
                "delivered": figures.counts["delivered"],
                "opened": figures.counts["opened"],
                "machine_opened": figures.counts["machine_opened"],
                "clicked": figures.counts["clicked"],
                "click_rate": _rate(figures.counts["clicked"], figures.counts["delivered"]),
                "kept_from_previous": _rate(sent, previous_sent) if previous_sent else None,
                "exits_here": sum(n for (_, _, step), n in exits.items() if step == key),
                "attributed_conversions": figures.counts["attributed"],
                "attributed_revenue": _money(figures.amounts["attributed"]),
                "repeat_orders": figures.counts["repeat_orders"],
                "handoffs": figures.counts["handoffs"],
                **{f"handoffs_{o}": figures.counts[f"handoff_{o}"] for o in HANDOFF_OUTCOMES},
                "variants": [
                    {
                        "variant": variant,
                        "sent": item.counts["sent"],
                        "delivered": item.counts["delivered"],
                        "opened": item.counts["opened"],
                        "clicked": item.counts["clicked"],
                        "click_rate": _rate(item.counts["clicked"], item.counts["sent"]),
                        "attributed_revenue": _money(item.amounts["attributed"]),
                    }
                    for variant, item in step_variants
                ],
                "variants_p_value": p_value,
                "variants_significant": p_value is not None and p_value < 0.05,
            }
        )
        previous_sent = sent
    return result


def _attribution(total: Figures, cohorts: dict[str, Figures]) -> dict:
    return {
        "touch": {
            "conversions": total.counts["attributed"],
            "revenue": _money(total.amounts["attributed"]),
            "window_days": settings.REPORT_CLICK_WINDOW_DAYS,
            "opens_count": settings.REPORT_ATTRIBUTE_OPENS,
            "open_window_days": settings.REPORT_OPEN_WINDOW_DAYS,
        },
        "incremental": _incremental(cohorts),
    }


def _incremental(cohorts: dict[str, Figures]) -> dict:
    """Conversions and revenue the mailing added: (mailed rate - holdout rate) x mailed."""
    mailed, holdout = cohorts["mailed"], cohorts["holdout"]
    n_mailed, n_holdout = mailed.counts["enrolled"], holdout.counts["enrolled"]
    if not n_mailed or not n_holdout:
        return {"conversions": None, "revenue": None}
    converted = mailed.counts["cohort_converted"], holdout.counts["cohort_converted"]
    rate_gap = converted[0] / n_mailed - converted[1] / n_holdout
    per_contact_gap = (
        mailed.amounts["cohort_revenue"] / n_mailed - holdout.amounts["cohort_revenue"] / n_holdout
    )
    return {
        "conversions": round(rate_gap * n_mailed, 1),
        "revenue": _money(round(per_contact_gap * n_mailed)),
    }


def _holdout(sequence: Sequence, cohorts: dict[str, Figures]) -> dict:
    groups = {}
    for name, figures in cohorts.items():
        enrolled = figures.counts["enrolled"]
        groups[name] = {
            "contacts": enrolled,
            "converted": figures.counts["cohort_converted"],
            "conversion_rate": _rate(figures.counts["cohort_converted"], enrolled),
            "revenue": _money(figures.amounts["cohort_revenue"]),
            "revenue_per_contact": (
                _money(round(figures.amounts["cohort_revenue"] / enrolled)) if enrolled else None
            ),
        }
    lift = conversion_lift(
        mailed_converted=groups["mailed"]["converted"],
        mailed=groups["mailed"]["contacts"],
        holdout_converted=groups["holdout"]["converted"],
        holdout=groups["holdout"]["contacts"],
    )
    samples = {
        name: Sample(
            size=figures.counts["enrolled"],
            total=figures.amounts["cohort_revenue"] / 100,
            squares=figures.amounts["cohort_revenue_sq"] / 10_000,
        )
        for name, figures in cohorts.items()
    }
    return {
        "percent": sequence.holdout_percent,
        "mailed": groups["mailed"],
        "holdout": groups["holdout"],
        "lift": _lift_dict(lift),
        "revenue_lift": _revenue_lift_dict(
            revenue_lift(samples["mailed"], samples["holdout"]),
            groups=min(sample.size for sample in samples.values()) >= 2,
        ),
    }


def _revenue_lift_dict(lift: RevenueLift | None, *, groups: bool) -> dict:
    """Revenue per contact, mailed minus held out (report currency), with Welch's interval."""
    if lift is None:
        # Welch needs two contacts a group and some spread: no revenue yet has none.
        status = "no revenue yet" if groups else "no holdout data yet"
        return {"status": status, "is_significant": False}
    return {
        "difference": round(lift.difference, 4),
        "low": round(lift.low, 4),
        "high": round(lift.high, 4),
        "p_value": lift.p_value,
        "is_significant": lift.is_significant,
        "status": "significant" if lift.is_significant else "not yet significant",
    }


def _lift_dict(lift: Lift | None) -> dict:
    if lift is None:
        return {"status": "no holdout data yet", "is_significant": False}
    return {
        "difference": lift.difference,
        "low": lift.low,
        "high": lift.high,
        "relative": lift.relative,
        "p_value": lift.p_value,
        "is_significant": lift.is_significant,
        "status": "significant" if lift.is_significant else "not yet significant",
    }


# --- Across sequences -----------------------------------------------------------------------


def sequences_overview(*, period: Period = Period()) -> list[dict]:
    """One line per sequence with figures: funnel totals, attribution, holdout lift, sales."""
    sequences = {s.pk: s for s in Sequence.objects.select_related("topic").order_by("name")}
    per_sequence: dict[int, dict[str, Figures]] = defaultdict(
        lambda: {"whole": Figures(), "mailed": Figures(), "holdout": Figures()}
    )
    rows = _rows(sequence_pks=list(sequences), period=period, whole_sequence=True)
    for row in rows:
        if row["metric"].startswith("ended:"):
            continue
        figures = per_sequence[row["sequence_pk"]]
        figures["whole"].add(row["metric"], row["count"], row["amount"])
        if row["cohort"] in ("mailed", "holdout") and not row["step"]:
            figures[row["cohort"]].add(row["metric"], row["count"], row["amount"])
    lines = []
    for pk, sequence in sequences.items():
        figures = per_sequence.get(pk)
        if figures is None:
            continue
        total = figures["whole"]
        cohorts = {"mailed": figures["mailed"], "holdout": figures["holdout"]}
        lines.append(
            {
                "pk": pk,
                "key": sequence.key,
                "name": sequence.name,
                "topic": sequence.topic.key if sequence.topic else "",
                "status": sequence.status,
                "enrolled": figures["mailed"].counts["enrolled"]
                + figures["holdout"].counts["enrolled"],
                **{stage: total.counts[stage] for stage in FUNNEL_STAGES},
                "machine_opened": total.counts["machine_opened"],
                "converted": figures["mailed"].counts["goal_converted"],
                "attributed_conversions": total.counts["attributed"],
                "attributed_revenue": _money(total.amounts["attributed"]),
                "incremental": _incremental(cohorts),
                "holdout": _holdout(sequence, cohorts),
                "handoffs": figures["whole"].counts["handoffs"],
                "handoffs_accepted": figures["whole"].counts["handoff_accepted"],
                "deals_opened": figures["mailed"].counts["deals_opened"],
                "deals_won": figures["mailed"].counts["deals_won"],
                "deals_won_amount": _money(figures["mailed"].amounts["deals_won"]),
            }
        )
    return lines


def revenue_by_day(*, period: Period = Period()) -> list[dict]:
    """All revenue, touch-attributed revenue and orders per day (report currency)."""
    rows = (
        period.filter_days(
            ReportCount.objects.filter(metric__in=["orders", "deals", "attributed"], step="")
        )
        .values("day", "metric")
        .annotate(count=Sum("count"), amount=Sum("amount_minor"))
        .order_by("day")
    )
    days: dict[datetime.date, dict] = {}
    for row in rows:
        line = days.setdefault(
            row["day"], {"day": row["day"], "conversions": 0, "revenue": 0.0, "attributed": 0.0}
        )
        if row["metric"] == "attributed":
            line["attributed"] += _money(row["amount"])
        else:
            line["conversions"] += row["count"]
            line["revenue"] += _money(row["amount"])
    return list(days.values())


def segment_time_to_convert() -> list[dict]:
    """Per segment: contacts converted, median days from entry to first conversion, spread."""
    buckets = (("same day", 0, 0), ("1-7", 1, 7), ("8-30", 8, 30), ("31-90", 31, 90))
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    names = {}
    for row in SegmentConversionCount.objects.select_related("segment").order_by("days"):
        histograms[row.segment_id][row.days] = row.count
        names[row.segment_id] = (row.segment.key, row.segment.name)
    result = []
    for segment_pk, histogram in histograms.items():
        total = sum(histogram.values())
        distribution = {
            label: sum(n for day, n in histogram.items() if low <= day <= high)
            for label, low, high in buckets
        }
        distribution["over 90"] = sum(n for day, n in histogram.items() if day > 90)
        result.append(
            {
                "segment": names[segment_pk][0],
                "name": names[segment_pk][1],
                "converted": total,
                "median_days": _median(histogram),
                "distribution": distribution,
            }
        )
    return sorted(result, key=lambda line: (line["median_days"], line["segment"]))


def _median(histogram: dict[int, int]) -> float:
    """The median of a day histogram {days: contacts} (the mean of the middle two if even)."""
    total = sum(histogram.values())
    ordered = sorted(histogram.items())

    def value_at(position: int) -> int:
        seen = 0
        for day, count in ordered:
            seen += count
            if position < seen:
                return day
        return ordered[-1][0]

    if total % 2:
        return float(value_at(total // 2))
    return (value_at(total // 2 - 1) + value_at(total // 2)) / 2


def repeat_purchases(*, period: Period = Period()) -> list[dict]:
    """Per email: orders credited to it and repeat orders that followed them."""
    rows = period.sums(
        ReportCount.objects.filter(metric__in=["attributed", "repeat_orders"]).exclude(step=""),
        ("sequence_pk", "step", "metric"),
    )
    keys = dict(Sequence.objects.values_list("pk", "key"))
    lines: dict[tuple[int, str], dict] = {}
    for row in rows:
        line = lines.setdefault(
            (row["sequence_pk"], row["step"]),
            {
                "sequence": keys.get(row["sequence_pk"], ""),
                "step": row["step"],
                "attributed": 0,
                "repeat_orders": 0,
                "repeat_revenue": 0.0,
            },
        )
        if row["metric"] == "attributed":
            line["attributed"] += row["count"]
        else:
            line["repeat_orders"] += row["count"]
            line["repeat_revenue"] += _money(row["amount"])
    for line in lines.values():
        line["repeat_rate"] = _rate(line["repeat_orders"], line["attributed"])
    return sorted(lines.values(), key=lambda line: (-line["repeat_orders"], line["sequence"]))


def engagement_by_topic(*, period: Period = Period()) -> list[dict]:
    """Sent, opened (human), clicked per consent topic, over its sequences."""
    topics = dict(Sequence.objects.values_list("pk", "topic__key"))
    rows = period.sums(
        ReportCount.objects.filter(
            metric__in=["sent", "delivered", "opened", "clicked"], step="", sequence_pk__gt=0
        ),
        ("sequence_pk", "metric"),
    )
    lines: dict[str, dict] = {}
    for row in rows:
        topic = topics.get(row["sequence_pk"]) or "(transactional)"
        line = lines.setdefault(
            topic, {"topic": topic, "sent": 0, "delivered": 0, "opened": 0, "clicked": 0}
        )
        line[row["metric"]] += row["count"]
    for line in lines.values():
        line["open_rate"] = _rate(line["opened"], line["delivered"])
        line["click_rate"] = _rate(line["clicked"], line["delivered"])
    return sorted(lines.values(), key=lambda line: line["topic"])


def handoff_feedback(*, period: Period = Period(), sequence: Sequence | None = None) -> list[dict]:
    """Sales' verdicts (accepted, recycled, rejected, with reasons) per sequence and email.

    Read from the `feedback:<outcome>:<reason>` counters (facts._handoff_outcomes), counted
    on the day of the handoff, so the period counts handoffs opened in it.
    """
    rows = ReportCount.objects.filter(metric__startswith=FEEDBACK)
    if sequence is not None:
        rows = rows.filter(sequence_pk=sequence.pk)
    keys = dict(Sequence.objects.values_list("pk", "key"))
    lines = []
    for row in period.sums(rows, ("sequence_pk", "step", "metric")):
        if not row["count"]:
            continue
        outcome, reason = row["metric"][len(FEEDBACK) :].split(":", 1)
        lines.append(
            {
                "sequence": keys.get(row["sequence_pk"], "(no email before)"),
                "step": row["step"],
                "outcome": outcome,
                "reason": reason,
                "count": row["count"],
            }
        )
    return sorted(
        lines, key=lambda line: (line["sequence"], line["step"], line["outcome"], line["reason"])
    )
