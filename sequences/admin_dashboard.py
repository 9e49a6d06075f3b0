"""sequences' dashboard panels: results and deliverability on the home, the trend in Reports.

Registered when sequences.admin is imported (the admin autodiscovers it).
"""

import datetime

from django.core.cache import cache
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from crm.admin_hooks import MARKETING, register_dashboard_panel
from crm.charts import ReferenceLine, Series, data_table, line_chart, percent
from crm.dashboards import period_days
from sequences.esp.report import COMPLAINT_DANGER, COMPLAINT_WARN, DayRow, deliverability_by_day
from sequences.models import CircuitBreakerTrip
from sequences.selectors import sequence_results_recent

RESULTS_DAYS = 7
HEALTH_DAYS = 14
#: The results and deliverability scans are bounded by their period; a page view reuses
#: them for this many seconds.
CACHE_SECONDS = 300
COMPLAINT_LINES = (
    ReferenceLine(COMPLAINT_WARN, "0.1%: keep below", "warn"),
    ReferenceLine(COMPLAINT_DANGER, "0.3%: never reach", "danger"),
)


def _cached(key: str, compute, seconds: int = CACHE_SECONDS):
    return cache.get_or_set(f"dashboard:{key}", compute, seconds)


def render_sequence_results(request):
    results = _cached(
        f"sequence-results:{RESULTS_DAYS}", lambda: sequence_results_recent(days=RESULTS_DAYS)
    )
    return data_table(
        key="sequence-results",
        title=f"Active sequences, last {RESULTS_DAYS} days",
        description=(
            "Emails, not events: an email clicked twice counts once. Opens are left out, "
            "as machine opens (Apple Mail) inflate them."
        ),
        columns=[
            "Sequence",
            "Enrolled",
            "Sent",
            "Delivered",
            "Clicked",
            "Click rate",
            "Converted",
            "Unsubscribed",
            "Complaints",
        ],
        rows=[
            [
                item.sequence.name,
                item.enrolled,
                item.sent,
                item.delivered,
                item.clicked,
                item.click_rate,
                item.converted,
                item.unsubscribed,
                item.complaints,
            ]
            for item in results
        ],
        formats=[None, None, None, None, None, percent(1)],
        row_links=[
            reverse("admin:sequences_sequence_change", args=[item.sequence.pk]) for item in results
        ],
        empty_text="No active sequences.",
    )


def daily_totals(rows: list[DayRow], *, days: int) -> list[DayRow]:
    """Deliverability per day, all sending domains together, oldest first.

    Every day of the period has a row (a day without sends has no rate: a gap in the
    chart), so the chart's axis always spans the whole period.
    """
    today = timezone.localdate()
    totals: dict[datetime.date, DayRow] = {
        day: DayRow(day=day, domain="all")
        for day in (today - datetime.timedelta(days=offset) for offset in range(days))
    }
    for row in rows:
        total = totals.setdefault(row.day, DayRow(day=row.day, domain="all"))
        for name in ("sent", "delivered", "bounced", "hard_bounced", "complaints", "unsubscribes"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return sorted(totals.values(), key=lambda row: row.day)


def _deliverability(days: int) -> list[DayRow]:
    return _cached(
        f"deliverability:{days}", lambda: daily_totals(deliverability_by_day(days=days), days=days)
    )


def complaint_chart(*, key: str, rows: list[DayRow], days: int):
    return line_chart(
        key=key,
        title=f"Complaint rate per day, last {days} days",
        series=[Series("Complaint rate", [(row.day, row.complaint_rate) for row in rows])],
        reference_lines=COMPLAINT_LINES,
        value_format=percent(2),
        description="Complaints per delivered email. Gmail and Yahoo require staying below 0.1%.",
        empty_text="No sends or ESP events in this period.",
    )


def render_deliverability_health(request):
    rows = _deliverability(HEALTH_DAYS)
    week_start = timezone.localdate() - datetime.timedelta(days=6)
    week = DayRow(day=week_start, domain="all")
    for row in rows:
        if row.day >= week_start:
            for name in ("sent", "delivered", "bounced", "complaints"):
                setattr(week, name, getattr(week, name) + getattr(row, name))
    status = render_to_string(
        "admin/sequences/dashboard_deliverability_status.html",
        {
            "open_trip": CircuitBreakerTrip.objects.filter(resumed_at__isnull=True).first(),
            "week": week,
            "level": week.complaint_level,
        },
        request=request,
    )
    return [status, complaint_chart(key="complaint-rate", rows=rows, days=HEALTH_DAYS)]


def render_deliverability_trend(request):
    days = period_days(request)
    rows = _deliverability(days)
    bounces = line_chart(
        key="bounce-rate",
        title=f"Bounce rate per day, last {days} days",
        series=[
            Series("Bounce rate", [(row.day, row.bounce_rate) for row in rows]),
            Series(
                "Hard bounce rate",
                [(row.day, row.hard_bounced / row.sent if row.sent else None) for row in rows],
            ),
        ],
        value_format=percent(2),
        min_top=0.01,
        description="Bounces per email sent; hard bounces suppress the address.",
        empty_text="No sends or ESP events in this period.",
    )
    return [complaint_chart(key="complaint-trend", rows=rows, days=days), bounces]


register_dashboard_panel(
    "sequence-results",
    "Active sequences",
    render_sequence_results,
    roles=[MARKETING],
    permission="sequences.view_sequence",
    order=20,
    wide=True,
)
register_dashboard_panel(
    "deliverability-health",
    "Deliverability health",
    render_deliverability_health,
    roles=[MARKETING],
    permission="sequences.view_circuitbreakertrip",
    order=25,
)
register_dashboard_panel(
    "deliverability-trend",
    "Deliverability",
    render_deliverability_trend,
    dashboard="reports",
    permission="sequences.view_circuitbreakertrip",
    order=10,
    wide=True,
)
