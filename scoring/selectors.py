"""Reads that are reused or not obvious: rules in force, score parts and reasons, reports."""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Case, Count, F, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Abs, TruncWeek
from django.utils import timezone

from crm.models import Contact
from scoring.models import DemoRoutingRule, Handoff, HandoffRule, ScoreChange, ScoringRule

#: Score reasons say "this week" for matches within this many days.
REASON_RECENT_DAYS = 7


@dataclass(frozen=True)
class RuleBook:
    """The active scoring rules, loaded once per batch with their conditions."""

    engagement_by_kind: dict[str, list[ScoringRule]]
    engagement_any_kind: list[ScoringRule]
    fit: list[ScoringRule]
    #: Whether any fit rule exists, active or not: only then can a contact hold fit points.
    has_fit_rules: bool = False

    def engagement_for(self, kind: str) -> list[ScoringRule]:
        return self.engagement_by_kind.get(kind, []) + self.engagement_any_kind

    def engagement_for_kind_only(self, kind: str) -> list[ScoringRule]:
        """Rules that name this kind (kind-less rules match engagement only)."""
        return self.engagement_by_kind.get(kind, [])

    @property
    def has_engagement_rules(self) -> bool:
        return bool(self.engagement_by_kind or self.engagement_any_kind)

    def __bool__(self) -> bool:
        return self.has_engagement_rules or self.has_fit_rules


def rule_book_load() -> RuleBook:
    """Return the active scoring rules (their conditions are a column) in one query."""
    by_kind: dict[str, list[ScoringRule]] = {}
    any_kind: list[ScoringRule] = []
    fit: list[ScoringRule] = []
    has_fit_rules = False
    # Inactive fit rules come along only to tell whether fit points may need giving back.
    rules = ScoringRule.objects.filter(Q(is_active=True) | Q(category=ScoringRule.Category.FIT))
    for rule in rules.order_by("pk"):
        if rule.category == ScoringRule.Category.FIT:
            has_fit_rules = True
            if rule.is_active:
                fit.append(rule)
        elif rule.activity_kind:
            by_kind.setdefault(rule.activity_kind, []).append(rule)
        else:
            any_kind.append(rule)
    return RuleBook(
        engagement_by_kind=by_kind,
        engagement_any_kind=any_kind,
        fit=fit,
        has_fit_rules=has_fit_rules,
    )


def handoff_rules_active() -> list[HandoffRule]:
    """Return the active handoff rules in the order they are tried, with their signal rules."""
    return list(
        HandoffRule.objects.filter(is_active=True)
        .select_related("lifecycle_stage")
        .prefetch_related("signal_rules")
        .order_by("position", "key")
    )


def demo_routing_rules_active() -> list[DemoRoutingRule]:
    """Return the active demo routing rules in the order they are tried, with their segments."""
    return list(
        DemoRoutingRule.objects.filter(is_active=True)
        .select_related("segment", "assignee")
        .order_by("position", "key")
    )


@dataclass(frozen=True)
class ScoreParts:
    engagement: int
    fit: int

    @property
    def total(self) -> int:
        return self.engagement + self.fit


def score_parts(*, contact_id: int) -> ScoreParts:
    """Return the contact's engagement and fit points according to the ledger."""
    sums = dict(
        ScoreChange.objects.filter(contact_id=contact_id)
        .values_list("part")
        .annotate(total=Sum("points"))
        .order_by()
    )
    return ScoreParts(
        engagement=sums.get(ScoreChange.Part.ENGAGEMENT, 0) or 0,
        fit=sums.get(ScoreChange.Part.FIT, 0) or 0,
    )


@dataclass(frozen=True)
class ScoreReason:
    """One rule's share of a score: "+25 Pricing page viewed (twice this week)"."""

    rule_key: str
    rule_name: str
    part: str
    points: int
    recent_matches: int
    latest_at: datetime.datetime | None

    @property
    def label(self) -> str:
        text = f"{self.points:+d} {self.rule_name}"
        if self.part == ScoreChange.Part.FIT:
            return text
        return f"{text} ({_times(self.recent_matches)} this week)" if self.recent_matches else text


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def score_reasons(
    *, contact_id: int, limit: int = 5, now: datetime.datetime | None = None
) -> list[ScoreReason]:
    """The rules that make up most of the contact's score, largest first, in one query."""
    week_ago = (now or timezone.now()) - datetime.timedelta(days=REASON_RECENT_DAYS)
    matched = Q(reason__in=[ScoreChange.Reason.ACTIVITY, ScoreChange.Reason.CAPPED])
    rows = (
        ScoreChange.objects.filter(contact_id=contact_id)
        .values("rule__key", "rule__name", "part")
        .annotate(
            net=Sum("points"),
            recent=Count("pk", filter=matched & Q(occurred_at__gte=week_ago)),
            latest_at=Max("occurred_at", filter=matched),
            size=Abs("net"),
        )
        .exclude(net=0)
        .order_by("-size", "rule__key")[:limit]
    )
    return [
        ScoreReason(
            rule_key=row["rule__key"],
            rule_name=row["rule__name"],
            part=row["part"],
            points=row["net"],
            recent_matches=row["recent"],
            latest_at=row["latest_at"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ScoreSummary:
    """A contact's score parts and the reasons behind them, as score_parts + score_reasons."""

    parts: ScoreParts
    reasons: list[ScoreReason]


def score_summaries(
    *, contact_ids: Iterable[int], limit: int = 5, now: datetime.datetime | None = None
) -> dict[int, ScoreSummary]:
    """score_parts and score_reasons for many contacts in one query (a handoff batch)."""
    contact_ids = list(contact_ids)
    if not contact_ids:
        return {}
    week_ago = (now or timezone.now()) - datetime.timedelta(days=REASON_RECENT_DAYS)
    matched = Q(reason__in=[ScoreChange.Reason.ACTIVITY, ScoreChange.Reason.CAPPED])
    rows = (
        ScoreChange.objects.filter(contact_id__in=contact_ids)
        .values("contact_id", "rule__key", "rule__name", "part")
        .annotate(
            net=Sum("points"),
            recent=Count("pk", filter=matched & Q(occurred_at__gte=week_ago)),
            latest_at=Max("occurred_at", filter=matched),
        )
        .order_by()
    )
    # The parts are the sums of the same groups the reasons are made of.
    sums: dict[int, dict[str, int]] = {pk: {} for pk in contact_ids}
    reasons: dict[int, list[ScoreReason]] = {pk: [] for pk in contact_ids}
    for row in rows:
        pk, part, net = row["contact_id"], row["part"], row["net"] or 0
        sums[pk][part] = sums[pk].get(part, 0) + net
        if net:
            reasons[pk].append(
                ScoreReason(
                    rule_key=row["rule__key"],
                    rule_name=row["rule__name"],
                    part=part,
                    points=net,
                    recent_matches=row["recent"],
                    latest_at=row["latest_at"],
                )
            )
    return {
        pk: ScoreSummary(
            parts=ScoreParts(
                engagement=sums[pk].get(ScoreChange.Part.ENGAGEMENT, 0),
                fit=sums[pk].get(ScoreChange.Part.FIT, 0),
            ),
            # score_reasons' order: the largest first, then by rule key (None sorts first,
            # as NULL does in the database's ascending order on SQLite; rare: no rule).
            reasons=sorted(
                reasons[pk], key=lambda reason: (-abs(reason.points), reason.rule_key or "")
            )[:limit],
        )
        for pk in contact_ids
    }


@dataclass(frozen=True)
class SignalSeen:
    """A signal rule that matched a contact recently."""

    rule_id: int
    matches: int
    latest_at: datetime.datetime


def recent_signals(
    *, contact_ids: Iterable[int], rule_windows: dict[int, int], now: datetime.datetime
) -> dict[int, dict[int, SignalSeen]]:
    """For each contact, the signal rules (id -> window in days) that matched within their window.

    Capped matches count: the ledger records them at 0 points for this reason.
    """
    if not rule_windows:
        return {}
    window = Q()
    for rule_id, days in rule_windows.items():
        window |= Q(rule_id=rule_id, occurred_at__gte=now - datetime.timedelta(days=days))
    rows = (
        ScoreChange.objects.filter(
            window,
            contact_id__in=list(contact_ids),
            reason__in=[ScoreChange.Reason.ACTIVITY, ScoreChange.Reason.CAPPED],
        )
        .values("contact_id", "rule_id")
        .annotate(matches=Count("pk"), latest_at=Max("occurred_at"))
        .order_by()
    )
    seen: dict[int, dict[int, SignalSeen]] = {}
    for row in rows:
        seen.setdefault(row["contact_id"], {})[row["rule_id"]] = SignalSeen(
            rule_id=row["rule_id"], matches=row["matches"], latest_at=row["latest_at"]
        )
    return seen


def handoff_queue() -> QuerySet:
    """Open handoffs, the most urgent SLA first."""
    return Handoff.objects.filter(status__in=Handoff.OPEN_STATUSES).order_by("sla_due_at", "pk")


@dataclass(frozen=True)
class HandoffReportRow:
    rule: HandoffRule
    total: int
    open: int
    accepted: int
    recycled: int
    rejected: int
    sla_breached: int

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted as a share of the handoffs sales has closed."""
        closed = self.accepted + self.recycled + self.rejected
        return self.accepted / closed if closed else None


def handoff_report(*, since: datetime.datetime | None = None) -> list[HandoffReportRow]:
    """Per handoff rule: how many handoffs were accepted, recycled, rejected (one query)."""
    handoffs = Q(handoffs__created_at__gte=since) if since else Q()
    S = Handoff.Status

    def count(*statuses: str) -> Count:
        return Count("handoffs", filter=handoffs & Q(handoffs__status__in=statuses))

    rules = HandoffRule.objects.annotate(
        total=Count("handoffs", filter=handoffs),
        open=count(*Handoff.OPEN_STATUSES),
        accepted=count(S.ACCEPTED),
        recycled=count(S.RECYCLED),
        rejected=count(S.REJECTED),
        sla_breached=Count(
            "handoffs", filter=handoffs & Q(handoffs__sla_breached_at__isnull=False)
        ),
    ).order_by("position", "key")
    return [
        HandoffReportRow(
            rule=rule,
            total=rule.total,
            open=rule.open,
            accepted=rule.accepted,
            recycled=rule.recycled,
            rejected=rule.rejected,
            sla_breached=rule.sla_breached,
        )
        for rule in rules
    ]


def handoff_recent_close_reasons(*, rule: HandoffRule, limit: int = 10) -> QuerySet:
    """The latest recycle and reject reasons for a rule: marketing's feedback."""
    return (
        Handoff.objects.filter(
            rule=rule, status__in=[Handoff.Status.RECYCLED, Handoff.Status.REJECTED]
        )
        .select_related("contact")
        .order_by("-closed_at")[:limit]
    )


# --- Dashboards (scoring/admin/dashboard.py) -----------------------------------------------


@dataclass(frozen=True)
class HandoffQueueCounts:
    mine: int
    unassigned: int
    overdue: int


def handoff_queue_for(*, user, limit: int = 10) -> list[Handoff]:
    """The user's open handoffs and the unassigned ones: SLA clock running first, most urgent first.

    Contacted handoffs stay open until accepted, recycled or rejected, but their SLA is
    settled: they come after every handoff still waiting for a first contact.
    """
    waiting_first = Case(
        When(status__in=Handoff.UNTOUCHED_STATUSES, then=Value(0)), default=Value(1)
    )
    return list(
        handoff_queue()
        .filter(Q(owner=user) | Q(owner__isnull=True))
        .order_by(waiting_first, "sla_due_at", "pk")
        .select_related("contact", "owner")[:limit]
    )


def handoff_queue_counts(*, user, now: datetime.datetime | None = None) -> HandoffQueueCounts:
    """How many open handoffs are the user's, unassigned, and past their SLA (one query)."""
    now = now or timezone.now()
    overdue = Q(status__in=Handoff.UNTOUCHED_STATUSES, sla_due_at__lt=now)
    counts = (
        handoff_queue()
        .filter(Q(owner=user) | Q(owner__isnull=True))
        .aggregate(
            mine=Count("pk", filter=Q(owner=user)),
            unassigned=Count("pk", filter=Q(owner__isnull=True)),
            overdue=Count("pk", filter=overdue),
        )
    )
    return HandoffQueueCounts(**counts)


@dataclass(frozen=True)
class HandoffSlaWeek:
    week: datetime.date
    created: int
    #: Contacted by the SLA's due time.
    met: int
    #: Contacted late, or not contacted by the due time.
    missed: int
    #: Not contacted yet, still within the SLA.
    running: int


def handoff_sla_by_week(*, days: int, now: datetime.datetime | None = None) -> list[HandoffSlaWeek]:
    """Handoffs created per week in the period and whether sales met their SLA (one query)."""
    now = now or timezone.now()
    contacted_in_time = Q(contacted_at__isnull=False, contacted_at__lte=F("sla_due_at"))
    missed = Q(contacted_at__gt=F("sla_due_at")) | Q(contacted_at__isnull=True, sla_due_at__lt=now)
    rows = (
        Handoff.objects.filter(created_at__gte=now - datetime.timedelta(days=days))
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(
            created=Count("pk"),
            met=Count("pk", filter=contacted_in_time),
            missed=Count("pk", filter=missed),
        )
        .order_by("week")
    )
    return [
        HandoffSlaWeek(
            week=_as_date(row["week"]),
            created=row["created"],
            met=row["met"],
            missed=row["missed"],
            running=row["created"] - row["met"] - row["missed"],
        )
        for row in rows
    ]


def _as_date(value) -> datetime.date:
    return value.date() if isinstance(value, datetime.datetime) else value


def score_counts() -> list[tuple[int, int]]:
    """(lead score, contacts with it) for every score held (reads the lead_score index)."""
    return list(
        Contact.objects.values_list("lead_score")
        .annotate(contacts=Count("pk"))
        .order_by("lead_score")
    )
