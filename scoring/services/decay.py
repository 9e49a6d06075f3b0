"""Score decay: old engagement points halve, then expire, in set-based SQL.

Decay never edits a ledger row: it appends a reversing row that points at the row
it reduces. One INSERT ... SELECT per rule and step writes them, and one UPDATE
moves every affected contact's cached score; no Python loop over contacts or rows.
"""

import datetime
import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import (
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    UUIDField,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import Contact
from scoring.models import ScoreChange, ScoringRule
from scoring.services.handoffs import handoffs_rearm

Step = ScoreChange.DecayStep
MATCH_REASONS = (ScoreChange.Reason.ACTIVITY, ScoreChange.Reason.CAPPED)
#: The ledger columns a decay row fills, in the order the SELECT produces them.
DECAY_COLUMNS = (
    "contact",
    "rule",
    "reverses",
    "part",
    "reason",
    "points",
    "occurred_at",
    "created_at",
    "decay_step",
    "decay_run",
)


@dataclass(frozen=True)
class DecayResult:
    rows: int
    contacts: int
    rearmed: int


@transaction.atomic
def score_decay_apply(*, now: datetime.datetime | None = None) -> DecayResult:
    """Halve and expire engagement points that are old enough, for every contact at once."""
    now = now or timezone.now()
    run = uuid.uuid4()
    rows = 0
    decaying = ScoringRule.objects.filter(category=ScoringRule.Category.ENGAGEMENT).exclude(
        halve_after_days__isnull=True, expire_after_days__isnull=True
    )
    for rule in decaying:
        # Expire first, so halving can skip points that are gone anyway.
        if rule.expire_after_days:
            rows += _insert_decay(_expiring(rule, now), step=Step.EXPIRED, run=run, now=now)
        if rule.halve_after_days:
            rows += _insert_decay(_halving(rule, now), step=Step.HALVED, run=run, now=now)
    contacts = _contact_scores_apply(run) if rows else 0
    rearmed = handoffs_rearm(now=now)
    return DecayResult(rows=rows, contacts=contacts, rearmed=rearmed)


def _matched(rule: ScoringRule, older_than: datetime.datetime) -> QuerySet:
    return (
        ScoreChange.objects.filter(rule=rule, reason__in=MATCH_REASONS, occurred_at__lt=older_than)
        .exclude(points=0)
        .order_by()
    )


def _has_decay(step: int | None = None) -> Exists:
    decays = ScoreChange.objects.filter(reverses=OuterRef("pk"))
    return Exists(decays.filter(decay_step=step) if step else decays)


def _expiring(rule: ScoringRule, now: datetime.datetime) -> QuerySet:
    """Rows past expiry, annotated with the points still left on them (all of them, negated)."""
    already = (
        ScoreChange.objects.filter(reverses=OuterRef("pk"))
        .order_by()
        .values("reverses")
        .annotate(total=Sum("points"))
        .values("total")
    )
    left = F("points") + Coalesce(Subquery(already), Value(0))
    cutoff = now - datetime.timedelta(days=rule.expire_after_days)
    return (
        _matched(rule, cutoff)
        .exclude(_has_decay(Step.EXPIRED))
        .annotate(left=left)
        .exclude(left=0)
        .annotate(removed=Value(0) - F("left"))
    )


def _halving(rule: ScoringRule, now: datetime.datetime) -> QuerySet:
    """Rows past the half-life and not yet decayed, annotated with half their points, negated."""
    queryset = _matched(rule, now - datetime.timedelta(days=rule.halve_after_days)).exclude(
        _has_decay()
    )
    if rule.expire_after_days:
        queryset = queryset.filter(
            occurred_at__gte=now - datetime.timedelta(days=rule.expire_after_days)
        )
    # Integer division truncates toward zero in SQLite and PostgreSQL alike: 5 loses 2.
    half = F("points") / Value(2)
    return queryset.annotate(half=half).exclude(half=0).annotate(removed=Value(0) - F("half"))


def _insert_decay(rows: QuerySet, *, step: int, run: uuid.UUID, now: datetime.datetime) -> int:
    """INSERT INTO the ledger ... SELECT from `rows`; returns how many rows were written.

    Django has no INSERT ... SELECT, so the SELECT is built with the ORM and compiled.
    ON CONFLICT DO NOTHING (SQLite and PostgreSQL) leaves out rows a concurrent run
    already decayed; only rows carrying this run's id move scores afterwards.
    """
    select = rows.annotate(
        c_contact=F("contact_id"),
        c_rule=F("rule_id"),
        c_reverses=F("pk"),
        c_part=F("part"),
        c_reason=Value(ScoreChange.Reason.DECAY.value),
        c_points=F("removed"),
        c_occurred_at=Value(now, output_field=DateTimeField()),
        c_created_at=Value(now, output_field=DateTimeField()),
        c_decay_step=Value(int(step), output_field=IntegerField()),
        c_decay_run=Value(run, output_field=UUIDField()),
    ).values_list(*(f"c_{name}" for name in DECAY_COLUMNS))
    sql, params = select.query.get_compiler(connection=connection).as_sql()
    meta = ScoreChange._meta
    columns = ", ".join(
        connection.ops.quote_name(meta.get_field(name).column) for name in DECAY_COLUMNS
    )
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {sql} ON CONFLICT DO NOTHING", params)
        return max(cursor.rowcount, 0)


def _contact_scores_apply(run: uuid.UUID) -> int:
    """Add each contact's decay from this run to their cached score, in one UPDATE."""
    run_rows = ScoreChange.objects.filter(decay_run=run).order_by()
    decay_total = (
        run_rows.filter(contact_id=OuterRef("pk"))
        .values("contact_id")
        .annotate(total=Sum("points"))
        .values("total")
    )
    return Contact.objects.filter(pk__in=run_rows.values("contact_id")).update(
        lead_score=F("lead_score") + Coalesce(Subquery(decay_total), Value(0))
    )
