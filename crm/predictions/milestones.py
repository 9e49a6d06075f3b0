"""Missed milestones: "X did not happen within N days of Y", checked set-based.

`milestones_check` runs one SELECT per active rule, whatever the number of contacts:

    first Y per contact since watch_from (GROUP BY), due by now,
    with no X between Y and Y + N days (NOT EXISTS), not flagged before (NOT EXISTS)

then writes the misses, their tasks and their `milestone_missed` activities in bulk.
The unique (rule, contact) constraint makes a second run, or two workers at once,
flag nobody twice.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm.conditions.evaluator import definition_is_empty
from crm.models import Activity, Contact, Task
from crm.predictions.models import MilestoneRule, MissedMilestone
from crm.predictions.selectors import sql_plus_days
from crm.segments.compiler import compile_activity_definition
from crm.services.activities import ActivityInput, activity_record_batch

MISSED_ACTIVITY = "milestone_missed"


@dataclass(frozen=True)
class MilestoneCheck:
    rules: int
    missed: int


def _due(rule: MilestoneRule, now: datetime.datetime) -> list[tuple[int, datetime.datetime]]:
    """(contact id, when Y happened) for every contact who missed this rule and is not flagged."""
    activity, missed = Activity._meta.db_table, MissedMilestone._meta.db_table
    start_only, start_params = _only(rule.start_kind, rule.start_conditions, "id")
    expected_only, expected_params = _only(rule.expected_kind, rule.expected_conditions, "done.id")
    sql = f"""
        SELECT first.contact_id, first.started_at FROM (
            SELECT contact_id, MIN(occurred_at) AS started_at FROM {activity}
            WHERE kind = %s AND contact_id IS NOT NULL AND occurred_at >= %s {start_only}
            GROUP BY contact_id
        ) AS first
        WHERE first.started_at <= %s
        AND NOT EXISTS (
            SELECT 1 FROM {activity} AS done
            WHERE done.contact_id = first.contact_id AND done.kind = %s
            AND done.occurred_at >= first.started_at
            AND done.occurred_at <= {sql_plus_days("first.started_at")} {expected_only}
        )
        AND NOT EXISTS (
            SELECT 1 FROM {missed} AS flagged
            WHERE flagged.rule_id = %s AND flagged.contact_id = first.contact_id
        )
        ORDER BY first.contact_id
    """
    deadline = now - datetime.timedelta(days=rule.within_days)
    ops = connection.ops
    params = [
        rule.start_kind,
        ops.adapt_datetimefield_value(rule.watch_from),
        *start_params,
        ops.adapt_datetimefield_value(deadline),
        rule.expected_kind,
        rule.within_days,
        *expected_params,
        rule.pk,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(contact_id, _aware(started)) for contact_id, started in cursor.fetchall()]


def _only(kind: str, conditions, column: str) -> tuple[str, tuple]:
    """An `AND <column> IN (…)` clause keeping the activities that meet the conditions.

    The condition tree is compiled by the one condition language (activity mode) to a
    query over this kind's activities; no conditions, no clause.
    """
    if definition_is_empty(conditions):
        return "", ()
    matching = Activity.objects.filter(
        Q(kind=kind) & compile_activity_definition(conditions)
    ).values("pk")
    subquery, params = matching.query.sql_with_params()
    return f"AND {column} IN ({subquery})", params


def _aware(value) -> datetime.datetime:
    if isinstance(value, str):  # SQLite returns the stored text
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=datetime.UTC)


def milestones_check(*, now: datetime.datetime | None = None) -> MilestoneCheck:
    """Flag every contact who missed an active milestone rule, once; return the counts."""
    now = now or timezone.now()
    rules = list(MilestoneRule.objects.filter(is_active=True).select_related("task_owner"))
    missed = 0
    for rule in rules:
        missed += _flag(rule, _due(rule, now), now)
    return MilestoneCheck(rules=len(rules), missed=missed)


@transaction.atomic
def _flag(rule: MilestoneRule, due: list[tuple[int, datetime.datetime]], now) -> int:
    if not due:
        return 0
    days = datetime.timedelta(days=rule.within_days)
    MissedMilestone.objects.bulk_create(
        [
            MissedMilestone(
                rule=rule, contact_id=pk, started_at=at, due_at=at + days, detected_at=now
            )
            for pk, at in due
        ],
        ignore_conflicts=True,  # another run got there first: it flagged them
    )
    # ignore_conflicts leaves pks unset; read back what this run wrote.
    written = dict(
        MissedMilestone.objects.filter(rule=rule, detected_at=now).values_list("contact_id", "pk")
    )
    if not written:
        return 0
    if rule.creates_task:
        _tasks(rule, written, now)
    activity_record_batch(
        items=[
            ActivityInput(
                kind=MISSED_ACTIVITY,
                source="milestones",
                contact_id=contact_id,
                occurred_at=now,
                properties={
                    "rule": rule.key,
                    "start_kind": rule.start_kind,
                    "expected_kind": rule.expected_kind,
                    "days": rule.within_days,
                },
                idempotency_key=f"milestone:{rule.pk}:{contact_id}",
            )
            for contact_id in written
        ]
    )
    return len(written)


def _tasks(rule: MilestoneRule, written: dict[int, int], now: datetime.datetime) -> None:
    owners = dict(Contact.objects.filter(pk__in=written).values_list("pk", "owner_id"))
    fallback = rule.task_owner_id
    tasks = Task.objects.bulk_create(
        [
            Task(
                title=f"Missed milestone: {rule.name}",
                description=f"No {rule.expected_kind} within {rule.within_days} days of "
                f"{rule.start_kind}.",
                contact_id=contact_id,
                owner_id=owners.get(contact_id) or fallback,
                due_at=now,
                source=f"milestone:{rule.key}",
            )
            for contact_id in written
        ]
    )
    by_contact = {task.contact_id: task for task in tasks}
    misses = list(MissedMilestone.objects.filter(pk__in=written.values()))
    for miss in misses:
        miss.task = by_contact.get(miss.contact_id)
    MissedMilestone.objects.bulk_update(misses, ["task"])
