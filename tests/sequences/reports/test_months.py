"""Month rows: every increment counts on its day and its month; a period reads whole months
from the month rows and only its partial months by day, and sums the same."""

import datetime

import pytest
from django.db.models import Sum

from sequences.reports.counts import Key, Tally, report_counts_add
from sequences.reports.models import ReportCount
from sequences.reports.selectors import Period

pytestmark = pytest.mark.django_db
D = datetime.date
DAYS = {
    D(2026, 1, 1): 1,
    D(2026, 1, 15): 2,
    D(2026, 1, 31): 4,
    D(2026, 2, 1): 8,
    D(2026, 2, 28): 16,
    D(2026, 3, 1): 32,
    D(2026, 3, 10): 64,
    D(2026, 12, 31): 128,
    D(2027, 1, 1): 256,
}


@pytest.fixture
def counted():
    tally = Tally()
    for day, count in DAYS.items():
        tally.add(Key(day=day, metric="sent", sequence_pk=7), count, count * 100)
    report_counts_add(tally)


def test_each_increment_is_counted_on_its_day_and_its_month(counted):
    months = dict(ReportCount.objects.filter(span="m").values_list("day", "count").order_by("day"))
    assert months == {
        D(2026, 1, 1): 7,
        D(2026, 2, 1): 24,
        D(2026, 3, 1): 96,
        D(2026, 12, 1): 128,
        D(2027, 1, 1): 256,
    }
    assert ReportCount.objects.filter(span="d").count() == len(DAYS)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (None, None),
        (D(2026, 1, 1), D(2026, 1, 31)),  # exactly one month
        (D(2026, 1, 2), D(2026, 1, 31)),  # a month but its first day
        (D(2026, 1, 15), D(2026, 3, 1)),  # partial, whole, partial
        (D(2026, 1, 31), D(2026, 2, 1)),  # two days across a month's end
        (D(2026, 2, 28), D(2026, 2, 28)),  # one day
        (D(2026, 1, 15), None),
        (None, D(2026, 3, 9)),
        (None, D(2026, 12, 31)),
        (D(2026, 12, 31), D(2027, 1, 1)),  # across a year's end
        (D(2026, 3, 1), D(2026, 2, 1)),  # ends before it starts: nothing
    ],
)
def test_a_period_sums_the_same_as_its_days(counted, since, until):
    expected = sum(
        count
        for day, count in DAYS.items()
        if (since is None or day >= since) and (until is None or day <= until)
    )
    if since and until and since > until:
        expected = 0

    rows = Period(since=since, until=until).filter(ReportCount.objects.all())
    total = rows.aggregate(count=Sum("count"), amount=Sum("amount_minor"))

    assert (total["count"] or 0) == expected
    assert (total["amount"] or 0) == expected * 100


def test_a_long_period_reads_month_rows(counted):
    rows = Period(since=D(2026, 1, 15), until=D(2027, 1, 1)).filter(ReportCount.objects.all())

    # Jan 15 and 31 by day; February, March and December by month; Jan 1, 2027 by day.
    assert sorted(rows.values_list("span", "day")) == [
        ("d", D(2026, 1, 15)),
        ("d", D(2026, 1, 31)),
        ("d", D(2027, 1, 1)),
        ("m", D(2026, 2, 1)),
        ("m", D(2026, 3, 1)),
        ("m", D(2026, 12, 1)),
    ]


def test_adding_again_adds_to_the_day_and_the_month(counted):
    tally = Tally()
    tally.add(Key(day=D(2026, 2, 28), metric="sent", sequence_pk=7), 1)
    report_counts_add(tally)
    report_counts_add(tally)  # the tally is not changed by writing it

    day = ReportCount.objects.get(span="d", day=D(2026, 2, 28))
    month = ReportCount.objects.get(span="m", day=D(2026, 2, 1))
    assert (day.count, month.count) == (18, 26)
