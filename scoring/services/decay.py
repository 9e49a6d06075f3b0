"""Score decay: old engagement points halve, then expire, in set-based SQL.

Decay never edits a ledger row: it appends a reversing row that points at the row
it reduces. Contacts are taken in id ranges (CHUNK_CONTACTS at a time), each range
in its own transaction: one INSERT ... SELECT per rule and step writes the decay rows
of that range, and one UPDATE ... FROM (SELECT contact_id, SUM(points) ... GROUP BY
contact_id) moves their cached scores. No Python loop over contacts or rows, and no
per-contact subquery (that made the old single UPDATE quadratic: at 1M contacts it
had not finished after 400 s, in one transaction under a 120 s task timeout).

A run is resumable and idempotent: a range either commits whole (rows and scores) or
not at all, rows already decayed are skipped, and the ledger's unique (reverses,
decay_step) constraint keeps two concurrent runs from decaying the same points twice.
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
from crm.tasks_queue import contact_id_ranges
from scoring.models import ScoreChange, ScoringRule
from scoring.services.handoffs import handoffs_rearm

Step = ScoreChange.DecayStep
MATCH_REASONS = (ScoreChange.Reason.ACTIVITY, ScoreChange.Reason.CAPPED)
#: Contacts per transaction (and per task when the schedule fans out): at 1M contacts
#: with a few million ledger rows one range takes a few seconds, far inside Q_TIMEOUT.
CHUNK_CONTACTS = 20_000
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

    def __add__(self, other: "DecayResult") -> "DecayResult":
        return DecayResult(
            self.rows + other.rows, self.contacts + other.contacts, self.rearmed + other.rearmed
        )


def score_decay_apply(
    *, now: datetime.datetime | None = None, chunk_size: int | None = None
) -> DecayResult:
    """Halve and expire engagement points that are old enough, for every contact.

    One transaction per range of contact ids; then re-arm handoffs whose score fell.
    """
    now = now or timezone.now()
    result = DecayResult(0, 0, 0)
    for first, last in score_decay_ranges(chunk_size=chunk_size):
        result += score_decay_apply_range(first_contact_id=first, last_contact_id=last, now=now)
    return result + DecayResult(0, 0, handoffs_rearm(now=now))


def score_decay_ranges(*, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """The contact id ranges a decay run works through; none when no rule decays."""
    if not _decaying_rules():
        return []
    return contact_id_ranges(chunk_size=chunk_size or CHUNK_CONTACTS)


@transaction.atomic
def score_decay_apply_range(
    *, first_contact_id: int, last_contact_id: int, now: datetime.datetime | None = None
) -> DecayResult:
    """Decay the points of contacts with ids in [first, last], in one transaction."""
    now = now or timezone.now()
    span = (int(first_contact_id), int(last_contact_id))
    # A run id per range: the score UPDATE then reads exactly this range's new rows.
    run = uuid.uuid4()
    rows = 0
    for rule in _decaying_rules():
        # Expire first, so halving can skip points that are gone anyway.
        if rule.expire_after_days:
            rows += _insert_decay(_expiring(rule, now, span), step=Step.EXPIRED, run=run, now=now)
        if rule.halve_after_days:
            rows += _insert_decay(_halving(rule, now, span), step=Step.HALVED, run=run, now=now)
    lowered = _contact_scores_apply(run) if rows else []
    rearmed = handoffs_rearm(contact_ids=lowered, now=now) if lowered else 0
    return DecayResult(rows=rows, contacts=len(lowered), rearmed=rearmed)


def _decaying_rules() -> list[ScoringRule]:
    return list(
        ScoringRule.objects.filter(category=ScoringRule.Category.ENGAGEMENT)
        .exclude(halve_after_days__isnull=True, expire_after_days__isnull=True)
        .order_by("pk")
    )


def _matched(rule: ScoringRule, older_than: datetime.datetime, span: tuple[int, int]) -> QuerySet:
    # The contact range leads, so the (contact, rule, occurred_at) index reads only this range.
    return (
        ScoreChange.objects.filter(
            contact_id__gte=span[0],
            contact_id__lte=span[1],
            rule=rule,
            reason__in=MATCH_REASONS,
            occurred_at__lt=older_than,
        )
        .exclude(points=0)
        .order_by()
    )


def _has_decay(step: int | None = None) -> Exists:
    decays = ScoreChange.objects.filter(reverses=OuterRef("pk"))
    return Exists(decays.filter(decay_step=step) if step else decays)


def _expiring(rule: ScoringRule, now: datetime.datetime, span: tuple[int, int]) -> QuerySet:
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
        _matched(rule, cutoff, span)
        .exclude(_has_decay(Step.EXPIRED))
        .annotate(left=left)
        .exclude(left=0)
        .annotate(removed=Value(0) - F("left"))
    )


def _halving(rule: ScoringRule, now: datetime.datetime, span: tuple[int, int]) -> QuerySet:
    """Rows past the half-life and not yet decayed, annotated with half their points, negated."""
    older_than = now - datetime.timedelta(days=rule.halve_after_days)
    queryset = _matched(rule, older_than, span).exclude(_has_decay())
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


def _contact_scores_apply(run: uuid.UUID) -> list[int]:
    """Add this run's decay to each contact's cached score; return the contacts lowered.

    UPDATE ... FROM (SELECT contact_id, SUM(points) ... GROUP BY contact_id): the run's
    rows are read once through the decay_run index, whatever the number of contacts.
    """
    contact = Contact._meta
    ledger = ScoreChange._meta
    quote = connection.ops.quote_name
    table = quote(contact.db_table)
    score = quote(contact.get_field("lead_score").column)
    run_value = ledger.get_field("decay_run").get_db_prep_value(run, connection)
    sql = (
        f"UPDATE {table} SET {score} = {table}.{score} + totals.total "
        f"FROM (SELECT {quote(ledger.get_field('contact').column)} AS contact_id, "
        f"SUM({quote(ledger.get_field('points').column)}) AS total "
        f"FROM {quote(ledger.db_table)} WHERE {quote(ledger.get_field('decay_run').column)} = %s "
        f"GROUP BY 1) AS totals "
        f"WHERE {table}.{quote(contact.pk.column)} = totals.contact_id AND totals.total <> 0 "
        f"RETURNING {table}.{quote(contact.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_value])
        return [row[0] for row in cursor.fetchall()]
