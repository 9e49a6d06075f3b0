"""segment: five definition shapes, written in today's grammar (docs/segments.md).

count: `segment_count(definition=...)`, the median of three. evaluate: a new
segment's first full evaluation (`segment_evaluate`, in a worker process with a time
box), in members per second; the budget is 500,000 members in 60 s.
"""

from __future__ import annotations

import statistics
import time
import uuid

from config.bench.context import Context
from config.bench.processes import purge_queue, worker_jobs
from crm.models import SegmentMembership
from crm.segment_selectors import segment_count
from crm.services.segments import segment_create

SHAPES = {
    "field": {"match": "all", "conditions": [
        {"field": "country", "operator": "in", "value": ["DE"]}]},
    "country_stage_score": {"match": "all", "conditions": [
        {"field": "country", "operator": "in", "value": ["US", "GB", "CA"]},
        {"field": "lifecycle_stage", "operator": "in", "value": ["new_lead", "engaged_lead"]},
        {"field": "lead_score", "operator": "between", "value": [10, 200]}]},
    "at_least_3_in_30d": {"match": "all", "conditions": [
        {"field": "activity", "operator": "at_least", "kind": "page_viewed", "count": 3,
         "days": 30}]},
    "nested_consent_no_deal": {"match": "all", "conditions": [
        {"field": "consent", "operator": "granted", "topic": "newsletter"},
        {"field": "suppressed", "operator": "is_not"},
        {"match": "any", "conditions": [
            {"field": "lifecycle_stage", "operator": "in",
             "value": ["engaged_lead", "opportunity"]},
            {"field": "activity", "operator": "at_least", "kind": "content_downloaded", "count": 1,
             "days": 90}]},
        {"match": "none", "conditions": [{"field": "open_deal", "operator": "any_stage"}]}]},
    "did_not_in_90d": {"match": "all", "conditions": [
        {"field": "activity", "operator": "none", "kind": "email_opened", "days": 90}]},
}  # fmt: skip
#: 500,000 members in 60 s.
EVALUATE_TARGET = ">= 8333"


def run(ctx: Context) -> None:
    counts = {}
    for shape, definition in SHAPES.items():
        times = []
        for _ in range(3):
            began = time.perf_counter()
            counts[shape] = segment_count(definition=definition)
            times.append((time.perf_counter() - began) * 1000)
        ctx.add(
            "segment",
            f"{shape}.count",
            "ms",
            statistics.median(times),
            target="< 1000",
            extra={"members": counts[shape]},
        )
    run_id = uuid.uuid4().hex[:4]
    segments = {
        shape: segment_create(key=f"bench-{shape.replace('_', '-')}-{run_id}",
                              name=f"Bench {shape} {run_id}", definition=definition)
        for shape, definition in SHAPES.items()
    }  # fmt: skip
    purge_queue()  # segment_create queued evaluations; the worker below does them, timed
    pks = [str(segment.pk) for segment in segments.values()]
    results = worker_jobs("evaluate", pks, ctx.scale.budget)
    for shape, segment in segments.items():
        result = results.get(str(segment.pk), {"failed": True})
        if "seconds" in result:
            members, seconds, note = result["members"], result["seconds"], ""
        else:
            members = SegmentMembership.objects.filter(segment=segment).count()
            seconds = result.get("cut", 0.0)
            note = f"cut off after {seconds:.0f} s: {members} of {counts[shape]} members written"
        rate = members / seconds if seconds > 0 and members else None
        ctx.add(
            "segment",
            f"{shape}.evaluate",
            "members/s",
            rate,
            target=EVALUATE_TARGET,
            passed=False if note else None,
            note=note,
            extra={"members": members, "seconds": round(seconds, 2)},
        )
