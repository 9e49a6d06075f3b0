"""ingest: 1,000-event batches through the real request stack (middleware, key auth,
serializers, services, in-transaction receivers), then the real worker drains the
tasks they queued (segment membership, enrollment runs, sends).

accepted: events / time inside the POSTs. processed: events / time from the first POST
until the last task they caused has finished in `qcluster`. The baseline is a multi-row
INSERT of the same activity rows through the same connection (rolled back).

The segment scenario's five shapes exist as segments while the batches arrive (a CRM
has segments; without them the membership refresh each batch queues does nothing).
They are not evaluated first, so each batch's people enter them as the refresh finds
them, and they are deleted afterwards so later scenarios see the data set as built.
"""

from __future__ import annotations

import datetime
import random
import time

from django.db import connection, transaction

from config.bench import tasklog
from config.bench.bulk import Writer
from config.bench.context import Context
from config.bench.processes import Cluster, purge_queue, wait_drained
from config.bench.scenarios.common import cluster_ready, per_second
from config.bench.scenarios.segment import SHAPES
from crm.models import Activity, Contact, Segment
from crm.services.segments import segment_create

BATCH = 1_000
MIX = {"page_viewed": 60, "product_viewed": 12, "content_downloaded": 5, "form_submitted": 4,
       "cart_updated": 5, "order_placed": 2, "signed_up": 2, "demo_requested": 1,
       "email_clicked": 4, "onboarding_milestone_reached": 5}  # fmt: skip
PATHS = ["/", "/pricing", "/features/segments", "/blog/win-back-emails", "/docs/api"]


def run(ctx: Context) -> None:
    batches = _batches(ctx.scale.ingest_batches)
    baseline = _raw_insert_rate(batches)
    from config.bench.people import api_client

    client = api_client()
    events = sum(len(batch) for batch in batches)
    segments = _segments()
    try:
        _measure(ctx, batches, baseline, client, events, len(segments))
    finally:
        Segment.objects.filter(pk__in=[segment.pk for segment in segments]).delete()


def _segments() -> list[Segment]:
    segments = [
        segment_create(
            key=f"bench-ingest-{shape.replace('_', '-')}", name=f"Bench ingest {shape}",
            definition=definition,
        )
        for shape, definition in SHAPES.items()
    ]  # fmt: skip
    purge_queue()  # their first evaluations are the segment scenario's to measure
    return segments


def _measure(ctx: Context, batches, baseline, client, events: int, segments: int) -> None:
    with Cluster():
        if not cluster_ready():
            ctx.add("ingest", "processed", "events/s", None, note="qcluster did not start")
            return
        since = set(tasklog.read()[0])
        started = time.time()
        inside = 0.0
        for batch in batches:
            began = time.perf_counter()
            response = client.post("/api/v1/events/", {"events": batch}, "application/json")
            inside += time.perf_counter() - began
            assert response.status_code in (200, 207), response.content[:300]
        posted = time.time()
        limit = posted + ctx.scale.budget * 2
        drained, last, done, total = wait_drained(since, limit)
    accepted = per_second(events, inside)
    extra = {"segments": segments, "events": events}
    ctx.add(
        "ingest",
        "accepted",
        "events/s",
        accepted,
        target=">= 10000",
        baseline=baseline,
        extra=extra,
    )
    processed = per_second(events, (last if drained else time.time()) - started)
    note = "" if drained else f"cut off: {done} of {total} queued tasks finished"
    ctx.add(
        "ingest",
        "processed",
        "events/s",
        processed if drained else None,
        target=">= 5000",
        baseline=baseline,
        passed=None if drained else False,
        note=note,
        extra=extra,
    )
    if drained and baseline:
        ctx.add("ingest", "processed_vs_insert", "ratio", processed / baseline, target=">= 0.15")
    ctx.add("ingest", "raw_insert", "rows/s", baseline)


def _batches(count: int) -> list[list[dict]]:
    rng = random.Random(7)
    top = Contact.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    sample = rng.sample(range(1, top + 1), min(top, BATCH * 2))
    emails = list(Contact.objects.filter(pk__in=sample).values_list("email", flat=True))
    kinds, weights = list(MIX), list(MIX.values())
    now = datetime.datetime.now(datetime.UTC)
    batches = []
    for b in range(count):
        batch = []
        for i in range(BATCH):
            new = rng.random() < 0.1 or not emails
            email = f"ingest-{b}-{i}@new.example.net" if new else rng.choice(emails)
            kind = rng.choices(kinds, weights)[0]
            at = now - datetime.timedelta(seconds=rng.randrange(3600))
            batch.append(
                {
                    "type": kind,
                    "email": email,
                    "occurred_at": at.isoformat(),
                    "properties": {"path": rng.choice(PATHS)} if kind == "page_viewed" else {},
                    "idempotency_key": f"bench-{b}-{i}-{now.timestamp()}",
                }
            )
        batches.append(batch)
    return batches


def _raw_insert_rate(batches: list[list[dict]]) -> float | None:
    """Multi-row INSERTs of the batches' activity rows, 1,000 per statement, rolled back."""
    ids = dict(
        Contact.objects.filter(email__in={e["email"] for b in batches for e in b}).values_list(
            "email", "pk"
        )
    )
    writer = Writer(
        Activity,
        [
            "kind",
            "contact_id",
            "anonymous_id",
            "occurred_at",
            "recorded_at",
            "source",
            "properties",
            "idempotency_key",
        ],
    )
    now = datetime.datetime.now(datetime.UTC)
    rows = [
        [(e["type"], ids.get(e["email"]), "" if e["email"] in ids else e["email"],
          datetime.datetime.fromisoformat(e["occurred_at"]), now, "bench-raw", e["properties"],
          e["idempotency_key"]) for e in batch]
        for batch in batches
    ]  # fmt: skip
    elapsed = 0.0
    with transaction.atomic():
        for batch in rows:
            prepared = [writer.prepare(row) for row in batch]
            sql = writer.insert_sql(len(prepared))
            params = [value for row in prepared for value in row]
            began = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
            elapsed += time.perf_counter() - began
        transaction.set_rollback(True)
    return per_second(sum(len(b) for b in rows), elapsed)
