"""Count the report facts that arrive on the activity bus, in the recording transaction."""

from crm.models import Activity
from sequences.reports.facts import (
    report_conversions_add,
    report_counts_add_engagement,
    report_counts_add_sent,
    report_deals_add,
    report_handoffs_add,
)


def count_activities(sender, activities: list[Activity], **kwargs) -> None:
    """Sends, ESP events, orders, refunds, deals and handoffs: a few queries per batch."""
    report_counts_add_sent(activities)
    report_counts_add_engagement(activities)
    report_conversions_add(activities)
    report_deals_add(activities)
    report_handoffs_add(activities)
