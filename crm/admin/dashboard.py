"""crm's dashboard panels: segment growth (marketing, reports) and customers at risk (success)."""

from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from crm.admin_hooks import MARKETING, SUCCESS, register_dashboard_panel
from crm.charts import Series, data_table, line_chart
from crm.dashboards import period_days
from crm.selectors import (
    AT_RISK_QUIET_DAYS,
    AT_RISK_WINDOW_DAYS,
    customer_at_risk_list,
    segment_growth,
)

HOME_DAYS = 30


def _signed(value: int | None) -> str:
    return "–" if value is None else f"{value:+,}"


def segment_growth_charts(*, days: int, key: str) -> list:
    """The biggest segments' members per day (a line each) and their change as a table."""
    growth = segment_growth(days=days)
    if not growth:
        return []
    chart = line_chart(
        key=key,
        title=f"Members of the biggest segments, last {days} days",
        series=[Series(item.segment.name, item.points) for item in growth],
        description="The count after each day's last evaluation.",
        empty_text="No segment has been evaluated in this period.",
    )
    table = data_table(
        key=f"{key}-change",
        title=f"Segment growth, last {days} days",
        columns=["Segment", "Members now", f"Change in {days} days"],
        rows=[
            [item.segment.name, item.segment.member_count, _signed(item.change)] for item in growth
        ],
        row_links=[reverse("admin:crm_segment_change", args=[item.segment.pk]) for item in growth],
    )
    return [chart, table]


def render_segment_growth_home(request):
    return segment_growth_charts(days=HOME_DAYS, key="segment-growth")


def render_segment_growth_report(request):
    return segment_growth_charts(days=period_days(request), key="segment-growth")


def render_customers_at_risk(request):
    now = timezone.now()
    contacts = list(customer_at_risk_list(now=now))
    return data_table(
        key="customers-at-risk",
        title="Customers at risk",
        description=(
            f"Customers quiet for {AT_RISK_QUIET_DAYS}–{AT_RISK_WINDOW_DAYS} days after "
            "engaging, or in the at-risk stage; longest quiet first."
        ),
        columns=["Customer", "Stage", "Last engaged", "Score", "Owner"],
        rows=[
            [
                str(contact),
                contact.lifecycle_stage.name,
                f"{timesince(contact.last_engaged_at, now)} ago"
                if contact.last_engaged_at
                else "never",
                contact.lead_score,
                str(contact.owner) if contact.owner else "nobody",
            ]
            for contact in contacts
        ],
        row_links=[reverse("admin:crm_contact_change", args=[c.pk]) for c in contacts],
        empty_text="No customer's engagement is falling.",
    )


register_dashboard_panel(
    "segment-growth",
    "Segment growth",
    render_segment_growth_home,
    roles=[MARKETING],
    permission="crm.view_segment",
    order=30,
)
register_dashboard_panel(
    "customers-at-risk",
    "Customers at risk",
    render_customers_at_risk,
    roles=[SUCCESS],
    permission="crm.view_contact",
    order=50,
)
register_dashboard_panel(
    "segment-growth-report",
    "Segment growth",
    render_segment_growth_report,
    dashboard="reports",
    permission="crm.view_segment",
    order=40,
)
