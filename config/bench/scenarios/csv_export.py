"""export: the contact changelist's CSV export, in a worker process with a time box.

rows/s over the whole response; `streams` is 1 when the response is streamed (a
1M-contact export must stream in constant memory); the worker's peak memory growth
is reported beside it.
"""

from __future__ import annotations

from config.bench.context import Context
from config.bench.processes import worker_jobs
from config.bench.setup import ADMIN_USERNAME
from crm.models import Contact


def run(ctx: Context) -> None:
    total = Contact.objects.count()
    query = "" if total <= ctx.scale.export_rows else "?lifecycle_stage__key__exact=new_lead"
    result = worker_jobs("export", [query], ctx.scale.budget * 2, ADMIN_USERNAME).get(query, {})
    if "seconds" not in result:
        note = f"cut off after {result['cut']:.0f} s" if "cut" in result else "failed; see the log"
        ctx.add("export", "rows", "rows/s", None, passed=False, note=note)
        return
    rate = result["rows"] / result["seconds"] if result["seconds"] > 0 else None
    ctx.add(
        "export",
        "rows",
        "rows/s",
        rate,
        extra={"rows": result["rows"], "query": query, "status": result["status"]},
    )
    ctx.add("export", "streams", "yes=1", 1.0 if result["streaming"] else 0.0, target=">= 1")
    ctx.add("export", "memory_growth", "MB", result["memory_mb"], extra={"rows": result["rows"]})
