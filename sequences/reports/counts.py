"""Adding to ReportCount: one upsert per batch, whatever the batch holds.

Writers collect increments in a `Tally` keyed by (day, sequence, version, step,
variant, cohort, metric) and call `report_counts_add` once. The statement is
`INSERT ... ON CONFLICT (...) DO UPDATE SET count = count + excluded.count`, which
SQLite (3.24+) and PostgreSQL both accept: concurrent writers add, never overwrite.
Keys are merged first (PostgreSQL refuses one statement touching a row twice) and
sorted (two writers lock rows in the same order, so they cannot deadlock).
"""

import datetime
from collections import Counter
from dataclasses import dataclass

from django.db import connection

from sequences.reports.models import ReportCount

#: Rows per INSERT: 9 parameters each stays far below SQLite's 32766 limit.
CHUNK = 500


def utc_day(at: datetime.datetime) -> datetime.date:
    """The UTC day a moment falls on: report days are UTC days, whatever the zone given."""
    return at.astimezone(datetime.UTC).date()


@dataclass(frozen=True, order=True)
class Key:
    day: datetime.date
    metric: str
    sequence_pk: int = 0
    version_pk: int = 0
    step: str = ""
    variant: str = ""
    cohort: str = ""


class Tally:
    """Increments of count and amount (report-currency cents) by Key."""

    def __init__(self) -> None:
        self.counts: Counter[Key] = Counter()
        self.amounts: Counter[Key] = Counter()

    def add(self, key: Key, count: int = 1, amount_minor: int = 0) -> None:
        self.counts[key] += count
        self.amounts[key] += amount_minor

    def __bool__(self) -> bool:
        return any(self.counts.values()) or any(self.amounts.values())


def report_counts_add(tally: Tally) -> int:
    """Add a batch's increments to the daily counters; return how many keys changed."""
    keys = sorted(key for key in set(tally.counts) | set(tally.amounts) if _nonzero(tally, key))
    if not keys:
        return 0
    table = connection.ops.quote_name(ReportCount._meta.db_table)
    columns = "day, sequence_pk, version_pk, step, variant, cohort, metric, count, amount_minor"
    conflict = "day, sequence_pk, version_pk, step, variant, cohort, metric"
    with connection.cursor() as cursor:
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            params = []
            for key in chunk:
                params += [
                    key.day.isoformat(),
                    key.sequence_pk,
                    key.version_pk,
                    key.step[:50],
                    key.variant[:20],
                    key.cohort,
                    key.metric[:120],
                    tally.counts[key],
                    tally.amounts[key],
                ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET "
                f"count = {table}.count + excluded.count, "
                f"amount_minor = {table}.amount_minor + excluded.amount_minor",
                params,
            )
    return len(keys)


def _nonzero(tally: Tally, key: Key) -> bool:
    return bool(tally.counts[key] or tally.amounts[key])
