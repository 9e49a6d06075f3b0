"""scoring's dashboard panels: sales's queue on the home; handoff SLA and scores in Reports."""

from django.core.cache import cache
from django.template.loader import render_to_string

from crm.admin_hooks import SALES, register_dashboard_panel, register_report
from crm.charts import Bin, Series, bar_chart, histogram_chart
from crm.dashboards import period_days
from scoring.admin.handoffs import sla_badge
from scoring.selectors import (
    handoff_queue_counts,
    handoff_queue_for,
    handoff_sla_by_week,
    score_counts,
)

#: The score histogram reads every contact's score (an index scan): computed at most this
#: often (seconds), so a page view never scans a million-row table.
SCORE_CACHE_SECONDS = 600
SCORE_CACHE_KEY = "dashboard:score-bins"
#: Bins of ten up to 100; 0 has its own bin (contacts without any signal yet).
SCORE_EDGES = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
ZERO_LABEL = "0 (no signals)"


def render_handoff_queue(request):
    handoffs = handoff_queue_for(user=request.user)
    return render_to_string(
        "admin/scoring/handoff/dashboard_queue.html",
        {
            "rows": [(handoff, sla_badge(handoff)) for handoff in handoffs],
            "counts": handoff_queue_counts(user=request.user),
        },
        request=request,
    )


def render_handoff_sla(request):
    days = period_days(request)
    weeks = handoff_sla_by_week(days=days)

    def series(name, attribute):
        return Series(name, [(f"{w.week:%b} {w.week.day}", getattr(w, attribute)) for w in weeks])

    return bar_chart(
        key="handoff-sla",
        title=f"Handoff SLA per week, last {days} days",
        x_label="Week of",
        series=[
            series("Contacted in time", "met"),
            series("Late or missed", "missed"),
            series("Clock running", "running"),
        ],
        description="Handoffs created each week, by whether sales contacted them within the SLA.",
        empty_text="No handoffs in this period.",
    )


def score_bins() -> list[Bin]:
    """Contacts per score range, from the score index (cached; see SCORE_CACHE_SECONDS)."""
    below = zero = 0
    counts = [0] * len(SCORE_EDGES)
    for score, contacts in score_counts():
        if score < 0:
            below += contacts
        elif score == 0:
            zero += contacts
        else:
            index = max(i for i, edge in enumerate(SCORE_EDGES) if score >= edge)
            counts[index] += contacts
    bins = [Bin(0, 1, zero, label=ZERO_LABEL)]
    if below:
        bins.insert(0, Bin(-1, 0, below, label="below 0"))
    uppers = [*SCORE_EDGES[1:], None]
    bins += [
        Bin(lower, upper, count)
        for lower, upper, count in zip(SCORE_EDGES, uppers, counts, strict=True)
    ]
    return bins


def render_score_distribution(request):
    bins = cache.get_or_set(SCORE_CACHE_KEY, score_bins, SCORE_CACHE_SECONDS)
    # Contacts without any signal (score 0) usually outnumber the rest many times over and
    # would flatten every other bar: they are counted in the description, not drawn.
    unscored = sum(b.count for b in bins if b.label == ZERO_LABEL)
    return histogram_chart(
        key="score-distribution",
        title="Lead score distribution",
        x_label="Score",
        value_label="Contacts",
        bins=[b for b in bins if b.label != ZERO_LABEL],
        description=(
            f"Contacts per lead score range now; {unscored:,} more have a score of 0 "
            f"(no signals yet). Refreshed every {SCORE_CACHE_SECONDS // 60} minutes."
        ),
        empty_text=f"No contact has a score yet ({unscored:,} at 0).",
    )


register_dashboard_panel(
    "handoff-queue",
    "Your handoff queue: mine and unassigned",
    render_handoff_queue,
    roles=[SALES],
    permission="scoring.view_handoff",
    order=10,
    wide=True,
)
register_dashboard_panel(
    "handoff-sla",
    "Handoff SLA",
    render_handoff_sla,
    dashboard="reports",
    permission="scoring.view_handoff",
    order=20,
)
register_dashboard_panel(
    "score-distribution",
    "Score distribution",
    render_score_distribution,
    dashboard="reports",
    permission="crm.view_contact",
    order=30,
)
register_report(
    "Handoffs per rule",
    "admin:scoring_handoff_report",
    permission="scoring.view_handoff",
    order=30,
)
