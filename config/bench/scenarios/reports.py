"""reports: the revenue view's pages at scale (issue 11: each under 300 ms at 1M contacts).

The report pages read only the daily aggregates, whose size grows with sequences x
days x steps, not with contacts. The scenario writes a year of aggregates for 20
sequences of 5 email steps with two variants (the shape a busy install reaches), then
times the overview, one sequence's results (90 days and a year), the reports dashboard
and the JSON API, warm, median of three, with their query counts.
"""

from __future__ import annotations

import datetime
import random

from django.urls import reverse
from django.utils import timezone

from config.bench.context import Context
from config.bench.people import admin_client, api_client
from config.bench.scenarios.admin import _measure
from crm.models import ConsentTopic
from sequences.models import Sequence, SequenceVersion
from sequences.reports.models import ReportCount

SEQUENCES = 20
STEPS = 5
DAYS = 365
STEP_METRICS = ("sent", "delivered", "opened", "machine_opened", "clicked", "attributed")
COHORT_METRICS = (
    "enrolled",
    "people_emailed",
    "people_delivered",
    "people_opened",
    "people_clicked",
    "goal_converted",
    "cohort_converted",
    "cohort_revenue",
)


def run(ctx: Context) -> None:
    sequences = _aggregates(ctx)
    client = admin_client()
    overview = reverse("admin:revenue_sequenceresult_changelist")
    results = reverse("admin:revenue_sequenceresult_change", args=[sequences[0].pk])
    pages = [
        ("reports.overview_90d", f"{overview}?days=90"),
        ("reports.results_90d", f"{results}?days=90"),
        ("reports.results_365d", f"{results}?days=365"),
        ("reports.dashboard", reverse("admin:reports_dashboard") + "?days=90"),
    ]
    for name, url in pages:
        _measure(ctx, client, name, url, None, scenario="reports")
    api = api_client()
    _measure(ctx, api, "reports.api_list", "/api/v1/reports/sequences/", None, "reports")
    _measure(
        ctx,
        api,
        "reports.api_one",
        f"/api/v1/reports/sequences/{sequences[0].key}/",
        None,
        "reports",
    )


def _aggregates(ctx: Context) -> list[Sequence]:
    """A year of daily counts for SEQUENCES sequences (written once per data set copy)."""
    topic = ConsentTopic.objects.order_by("pk").first()
    sequences = []
    for number in range(SEQUENCES):
        sequence, _ = Sequence.objects.get_or_create(
            key=f"bench-report-{number}",
            defaults={"name": f"Bench report {number}", "topic": topic, "holdout_percent": 10},
        )
        steps = [
            {"key": f"email-{n}", "type": "send_email", "config": {}, "template_id": None}
            for n in range(STEPS)
        ]
        version, _ = SequenceVersion.objects.get_or_create(
            sequence=sequence, number=1, defaults={"steps": steps}
        )
        Sequence.objects.filter(pk=sequence.pk).update(current_version=version)
        sequence.current_version = version
        sequences.append(sequence)
    if ReportCount.objects.filter(sequence_pk=sequences[0].pk).exists():
        return sequences
    rng = random.Random(11)
    today = timezone.now().date()
    rows = []
    for sequence in sequences:
        version_pk = sequence.current_version.pk
        for back in range(DAYS):
            day = today - datetime.timedelta(days=back)
            for metric in COHORT_METRICS:
                for cohort in ("mailed", "holdout"):
                    rows.append(
                        ReportCount(
                            day=day,
                            sequence_pk=sequence.pk,
                            version_pk=version_pk,
                            cohort=cohort,
                            metric=metric,
                            count=rng.randrange(1, 500),
                            amount_minor=rng.randrange(0, 100_000),
                        )
                    )
            # Emails are counted per step and variant and, once more, for the whole sequence.
            for step, variant in [(s, v) for s in range(STEPS) for v in "ab"] + [(None, "")]:
                rows += [
                    ReportCount(
                        day=day,
                        sequence_pk=sequence.pk,
                        version_pk=version_pk,
                        step="" if step is None else f"email-{step}",
                        variant=variant,
                        cohort="mailed",
                        metric=metric,
                        count=rng.randrange(1, 500),
                        amount_minor=rng.randrange(0, 50_000),
                    )
                    for metric in STEP_METRICS
                ]
    ReportCount.objects.bulk_create(rows, batch_size=5000)
    ctx.say(f"reports: wrote {len(rows):,} aggregate rows ({SEQUENCES} sequences x {DAYS} days)")
    return sequences
