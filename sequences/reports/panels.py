"""The revenue view on the dashboards and in the Reports menu (crm.admin_hooks)."""

import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from crm.admin_hooks import MARKETING, register_dashboard_panel, register_report
from crm.dashboards import period_days
from sequences.reports import charts
from sequences.reports.selectors import Period, revenue_by_day, sequences_overview

PERMISSION = "revenue.view_sequenceresult"


def _period(request) -> Period:
    today = timezone.now().date()  # report days are UTC days
    return Period(since=today - datetime.timedelta(days=period_days(request) - 1), until=today)


def render_revenue(request):
    """Revenue per day, all vs credited to an email."""
    return charts.revenue_chart(revenue_by_day(period=_period(request)), settings.REPORT_CURRENCY)


def render_sequences(request):
    """Each sequence's funnel totals, credited and incremental revenue, and lift."""
    lines = sequences_overview(period=_period(request))
    links = [reverse("admin:revenue_sequenceresult_change", args=[line["pk"]]) for line in lines]
    return charts.overview_table(lines, links, settings.REPORT_CURRENCY)


def register() -> None:
    """Register the revenue panels and the results page with crm's dashboard hooks."""
    results = "admin:revenue_sequenceresult_changelist"
    register_report("Sequence results", results, permission=PERMISSION, order=10)
    register_dashboard_panel(
        "revenue-per-day",
        "Revenue: all vs credited to emails",
        render_revenue,
        dashboard="reports",
        permission=PERMISSION,
        order=10,
        wide=True,
    )
    register_dashboard_panel(
        "sequence-revenue-results",
        "Sequence results",
        render_sequences,
        dashboard="reports",
        permission=PERMISSION,
        order=11,
        wide=True,
    )
    register_dashboard_panel(
        "home-revenue",
        "Revenue, last days",
        render_revenue,
        roles=[MARKETING],
        permission=PERMISSION,
        order=20,
        wide=True,
    )
