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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.db import connection

from crm.deferred import deferred_add, deferred_block
from sequences.reports.models import ReportCount

#: Rows per INSERT: 10 parameters each stays far below SQLite's 32766 limit. A batch's
#: day rows and their month rows go in the same statement.
CHUNK = 1000


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
    span: str = "d"

    def month(self) -> "Key":
        """The same counter for the whole month (its row's day is the month's first)."""
        return replace(self, day=self.day.replace(day=1), span="m")


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


@contextmanager
def report_counts_deferred() -> Iterator[None]:
    """Inside the block, report_counts_add collects; one upsert writes it all at the end.

    For the send path's record transaction (sequences.services.running): every worker
    adds to the same few counters (today's `sent` of a sequence, its steps' ends), so
    the first upsert's row locks were held, and made other workers' record transactions
    wait, for the rest of the transaction (the activities, their receivers, the moves).
    Written at the block's end, just before its commit, they are held for one statement.
    Must run inside `transaction.atomic`; nothing is written if the block raises, and
    increments made inside a savepoint that was rolled back are dropped.
    """
    with deferred_block(
        "report_counts",
        "report_counts_deferred() needs an atomic block: the counters must be written "
        "in the transaction whose work they count.",
    ) as live:
        yield
    if live is None:  # an outer block writes
        return
    merged = Tally()
    for tally in live:
        merged.counts.update(tally.counts)
        merged.amounts.update(tally.amounts)
    report_counts_add(merged)


def report_counts_add(tally: Tally) -> int:
    """Add a batch's increments to the daily and monthly counters; return how many day
    keys changed (inside report_counts_deferred: collected, written at its end)."""
    if deferred_add("report_counts", tally):
        return sum(1 for key in set(tally.counts) | set(tally.amounts) if _nonzero(tally, key))
    days = [key for key in set(tally.counts) | set(tally.amounts) if _nonzero(tally, key)]
    if not days:
        return 0
    rows = Tally()
    for key in days:
        rows.add(key, tally.counts[key], tally.amounts[key])
        rows.add(key.month(), tally.counts[key], tally.amounts[key])
    keys = sorted(key for key in set(rows.counts) | set(rows.amounts) if _nonzero(rows, key))
    table = connection.ops.quote_name(ReportCount._meta.db_table)
    columns = (
        "span, day, sequence_pk, version_pk, step, variant, cohort, metric, count, amount_minor"
    )
    conflict = "span, day, sequence_pk, version_pk, step, variant, cohort, metric"
    with connection.cursor() as cursor:
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            params = []
            for key in chunk:
                params += [
                    key.span,
                    key.day.isoformat(),
                    key.sequence_pk,
                    key.version_pk,
                    key.step[:50],
                    key.variant[:20],
                    key.cohort,
                    key.metric[:120],
                    rows.counts[key],
                    rows.amounts[key],
                ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET "
                f"count = {table}.count + excluded.count, "
                f"amount_minor = {table}.amount_minor + excluded.amount_minor",
                params,
            )
    return len(days)


def _nonzero(tally: Tally, key: Key) -> bool:
    return bool(tally.counts[key] or tally.amounts[key])


def report_counts_months_rebuild() -> None:
    """Recompute every month row from the day rows, in one set-based statement (for data
    written around the writers, e.g. the bench's generated history)."""
    table = connection.ops.quote_name(ReportCount._meta.db_table)
    if connection.vendor == "postgresql":
        month = "date_trunc('month', day)::date"
    else:
        month = "date(day, 'start of month')"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE span = 'm'")
        cursor.execute(
            f"INSERT INTO {table} (span, day, sequence_pk, version_pk, step, variant, cohort, "
            f"metric, count, amount_minor) "
            f"SELECT 'm', {month}, sequence_pk, version_pk, step, variant, cohort, metric, "
            f"SUM(count), SUM(amount_minor) FROM {table} WHERE span = 'd' "
            f"GROUP BY {month}, sequence_pk, version_pk, step, variant, cohort, metric"
        )
