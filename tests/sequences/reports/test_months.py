"""Month rows: every increment counts on its day and its month; a period reads whole months
from the month rows and only its partial months by day, and sums the same."""

import datetime

import pytest
from django.db.models import Q

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
        (D(2026, 1, 2), D(2026, 1, 30)),  # most of a month: its row minus two days
        (D(2026, 2, 2), D(2026, 3, 30)),  # two partial months, no whole one
        (D(2026, 1, 1), D(2026, 12, 31)),  # a whole year
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

    [total] = Period(since=since, until=until).sums(ReportCount.objects.all(), ("metric",)) or [
        {"count": 0, "amount": 0}
    ]

    assert total["count"] == expected
    assert total["amount"] == expected * 100


def test_a_long_period_reads_month_rows_and_the_fewest_day_rows():
    period = Period(since=D(2026, 1, 15), until=D(2027, 1, 1))

    # January from the 15th: its month row minus the 14 days before (not 17 days); then
    # February to December by month; January 2027 by its one day.
    assert period.parts() == [
        (Q(span="m") & Q(day__gte=D(2026, 2, 1)) & Q(day__lt=D(2027, 1, 1)), 1),
        (Q(span="m", day=D(2026, 1, 1)), 1),
        (Q(span="d", day__gte=D(2026, 1, 1), day__lt=D(2026, 1, 15)), -1),
        (Q(span="d", day__gte=D(2027, 1, 1), day__lte=D(2027, 1, 1)), 1),
    ]


def test_the_last_days_up_to_today_read_this_months_row_minus_the_days_after_today():
    parts = Period(since=D(2026, 9, 2), until=D(2026, 11, 29)).parts()

    assert parts == [
        (Q(span="m") & Q(day__gte=D(2026, 10, 1)) & Q(day__lt=D(2026, 11, 1)), 1),
        (Q(span="m", day=D(2026, 9, 1)), 1),
        (Q(span="d", day__gte=D(2026, 9, 1), day__lt=D(2026, 9, 2)), -1),
        (Q(span="m", day=D(2026, 11, 1)), 1),
        (Q(span="d", day__gt=D(2026, 11, 29), day__lt=D(2026, 12, 1)), -1),
    ]


def test_adding_again_adds_to_the_day_and_the_month(counted):
    tally = Tally()
    tally.add(Key(day=D(2026, 2, 28), metric="sent", sequence_pk=7), 1)
    report_counts_add(tally)
    report_counts_add(tally)  # the tally is not changed by writing it

    day = ReportCount.objects.get(span="d", day=D(2026, 2, 28))
    month = ReportCount.objects.get(span="m", day=D(2026, 2, 1))
    assert (day.count, month.count) == (18, 26)
