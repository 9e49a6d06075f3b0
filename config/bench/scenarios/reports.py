"""reports: the revenue view's pages at scale (issue 11: each under 300 ms at 1M contacts).

The report pages read only aggregate tables, whose size grows with sequences x days x
steps, not with contacts. The 1M data set has contacts and activities but no report
history, so the scenario adds a busy install's to its run copy, set-based: a year of
daily counts for SEQUENCES sequences of STEPS two-variant email steps (one day written,
then copied to the other days in one INSERT ... SELECT, and rolled up by month as
the writers do), sales handoffs with outcomes
and the segments' time-to-convert histograms. It then times every report page, warm,
median of three, with its query count and the process CPU time (the machine is shared:
CPU time and queries are the steadier figures):

- the overview (all sequences, the five questions: leads, sales, segments, repeat
  purchases, engagement by topic, sales feedback) over 90 and 365 days;
- one sequence's results (funnel, steps, variants, exits, attribution both ways, holdout)
  over 90 and 365 days, by version, and filtered by a segment;
- the reports dashboard (revenue, deliverability trend, handoff SLA, scores, segments),
  the deliverability report, the sequence page (its per-step counts);
- the JSON API, list and one sequence.
"""

from __future__ import annotations

import datetime
import statistics
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config.bench.context import Context
from config.bench.people import admin_client, api_client
from crm.models import ConsentTopic, Contact, Segment
from sequences.models import Sequence, SequenceVersion
from sequences.reports.counts import report_counts_months_rebuild
from sequences.reports.models import HandoffFact, ReportCount, SegmentConversionCount

SEQUENCES = 30
STEPS = 5
DAYS = 365
HANDOFFS = 50_000
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
    "cohort_revenue_sq",
    "deals_opened",
    "deals_won",
)
ENDINGS = ("ended:completed:", "ended:converted:", "ended:exited:audience_left")


def run(ctx: Context) -> None:
    sequences = _aggregates(ctx)
    first = sequences[0]
    client = admin_client()
    overview = reverse("admin:revenue_sequenceresult_changelist")
    results = reverse("admin:revenue_sequenceresult_change", args=[first.pk])
    segment = Segment.objects.order_by("pk").first()
    pages = [
        ("reports.overview_90d", f"{overview}?days=90"),
        ("reports.overview_365d", f"{overview}?days=365"),
        ("reports.results_90d", f"{results}?days=90"),
        ("reports.results_365d", f"{results}?days=365"),
        ("reports.results_version", f"{results}?days=365&version={first.current_version_id}"),
        ("reports.dashboard", reverse("admin:reports_dashboard") + "?days=90"),
        ("reports.deliverability", reverse("admin:sequences_deliverability")),
        ("reports.sequence_page", reverse("admin:sequences_sequence_change", args=[first.pk])),
    ]
    if segment is not None:
        pages.append(("reports.results_segment", f"{results}?days=90&segment={segment.pk}"))
    for name, url in pages:
        _measure(ctx, client, name, url)
    api = api_client()
    _measure(ctx, api, "reports.api_list", "/api/v1/reports/sequences/?since=2000-01-01")
    _measure(ctx, api, "reports.api_one", f"/api/v1/reports/sequences/{first.key}/")


def _measure(ctx: Context, client, name: str, url: str) -> None:
    response = client.get(url)
    if response.status_code != 200:
        ctx.add("reports", name, "ms", None, note=f"HTTP {response.status_code} for {url}")
        return
    times, cpu, queries = [], [], 0
    for _ in range(3):
        with CaptureQueriesContext(connection) as captured:
            began, began_cpu = time.perf_counter(), time.process_time()
            client.get(url)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
        queries = len(captured.captured_queries)
    ctx.add(
        "reports",
        name,
        "ms",
        statistics.median(times),
        target="< 300",
        extra={"queries": queries, "cpu_ms": round(statistics.median(cpu), 1), "url": url},
    )
    ctx.add("reports", f"{name}.queries", "queries", queries)
    ctx.add("reports", f"{name}.cpu", "ms", statistics.median(cpu))


def _sequences() -> list[Sequence]:
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
    return sequences


def _aggregates(ctx: Context) -> list[Sequence]:
    """A year of daily counts, handoffs and segment histograms (once per run copy)."""
    sequences = _sequences()
    if ReportCount.objects.filter(sequence_pk=sequences[0].pk).exists():
        return sequences
    today = timezone.now().date()
    rows = []
    for index, sequence in enumerate(sequences):
        version_pk = sequence.current_version.pk

        def row(
            metric, cohort="mailed", step="", variant="", n=0, pk=sequence.pk, v=version_pk, i=index
        ):
            count = 50 + (i * 37 + n * 11) % 450
            return ReportCount(
                day=today,
                sequence_pk=pk,
                version_pk=v,
                step=step,
                variant=variant,
                cohort=cohort,
                metric=metric,
                count=0 if metric == "cohort_revenue_sq" else count,
                amount_minor=count * 4_000 if metric != "cohort_revenue_sq" else count * 10**8,
            )

        for n, metric in enumerate(COHORT_METRICS):
            rows += [row(metric, cohort, n=n) for cohort in ("mailed", "holdout")]
        # Emails are counted per step and variant and, once more, for the whole sequence.
        for step, variant in [(f"email-{s}", v) for s in range(STEPS) for v in "ab"] + [("", "")]:
            rows += [row(m, step=step, variant=variant, n=n) for n, m in enumerate(STEP_METRICS)]
        rows += [row(m, step="email-2", n=n) for n, m in enumerate(ENDINGS)]
        rows += [row(m, step="email-1", n=n, cohort="") for n, m in enumerate(("handoffs",))]
        # Sales' verdicts on the handoffs after each email (facts.feedback_metric).
        verdicts = ("accepted:", "recycled:not ready", "rejected:no budget")
        rows += [
            row(f"feedback:{verdict}", cohort="", step=f"email-{s}", n=s)
            for s in range(STEPS)
            for verdict in verdicts
        ]
    rows += [row(m, cohort="", pk=0, v=0, n=n) for n, m in enumerate(("orders", "deals"))]
    # Other scenarios may have counted real traffic today (orders, sends): theirs stay.
    ReportCount.objects.bulk_create(rows, batch_size=5000, ignore_conflicts=True)
    _copy_to_earlier_days(today, [sequence.pk for sequence in sequences])
    report_counts_months_rebuild()
    _handoffs(sequences)
    _segment_histograms()
    if connection.vendor == "postgresql":
        # A live table is kept vacuumed by autovacuum, so its index-only scans skip the
        # heap; this copy was written a moment ago and autovacuum has not reached it yet.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {ReportCount._meta.db_table}")
    ctx.say(
        f"reports: wrote {ReportCount.objects.count():,} aggregate rows "
        f"({SEQUENCES} sequences x {DAYS} days), {HANDOFFS:,} handoffs"
    )
    return sequences


def _copy_to_earlier_days(today: datetime.date, sequence_pks: list[int]) -> None:
    """Copy today's rows of the bench sequences (and the all-sequence rows) to each of the
    DAYS - 1 days before, varying the counts a little."""
    table = connection.ops.quote_name(ReportCount._meta.db_table)
    if connection.vendor == "postgresql":
        earlier = "r.day - n.x"
    else:
        earlier = "date(r.day, '-' || n.x || ' days')"
    pks = ", ".join(str(int(pk)) for pk in [0, *sequence_pks])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %s)
            INSERT INTO {table}
                (span, day, sequence_pk, version_pk, step, variant, cohort, metric, count,
                 amount_minor)
            SELECT 'd', {earlier}, r.sequence_pk, r.version_pk, r.step, r.variant, r.cohort,
                   r.metric, r.count * (n.x %% 7 + 1) / 4, r.amount_minor * (n.x %% 5 + 1) / 3
            FROM {table} r CROSS JOIN n
            WHERE r.day = %s AND r.span = 'd' AND r.sequence_pk IN ({pks})
            ON CONFLICT DO NOTHING
            """,
            [DAYS - 1, today],
        )


def _handoffs(sequences: list[Sequence]) -> None:
    """HANDOFFS handoffs over the year, most closed with an outcome and a reason."""
    contacts = list(Contact.objects.order_by("pk").values_list("pk", flat=True)[:HANDOFFS])
    if not contacts:
        return
    now = timezone.now()
    outcomes = ("accepted", "recycled", "rejected", "")
    reasons = ("", "not ready", "wrong company size", "no budget")
    facts = [
        HandoffFact(
            handoff_pk=10**9 + n,
            contact_id=contacts[n % len(contacts)],
            opened_at=now - datetime.timedelta(hours=n % (DAYS * 24)),
            sequence_pks=[sequences[n % len(sequences)].pk],
            touch_sequence_pk=sequences[n % len(sequences)].pk,
            touch_step=f"email-{n % STEPS}",
            outcome=outcomes[n % 4],
            reason=reasons[n % 4] if outcomes[n % 4] != "accepted" else "",
            closed_at=now if outcomes[n % 4] else None,
        )
        for n in range(HANDOFFS)
    ]
    HandoffFact.objects.bulk_create(facts, batch_size=5000, ignore_conflicts=True)


def _segment_histograms() -> None:
    segments = list(Segment.objects.order_by("pk").values_list("pk", flat=True)[:50])
    SegmentConversionCount.objects.bulk_create(
        [
            SegmentConversionCount(segment_id=pk, days=days, count=1 + (pk * days) % 40)
            for pk in segments
            for days in range(0, 120, 3)
        ],
        ignore_conflicts=True,
    )
