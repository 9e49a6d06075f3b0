"""periodic: every task `setup_schedules` registers (crm.schedules), run once at this size.

They run one after the other in a worker process; one still running at the django-q2
task timeout is cut off there (the cluster would kill it too) and the rest go on in a
fresh process. A task that fans out (decay queues one task per contact-id range) is
timed with the tasks it queued, run after it in the same process: the run is done when
they are. Such a run gets a longer box (FANOUT_BOXES time boxes, at most its schedule
interval), each part must still end inside the task timeout, and a cut-off run reports
how many parts it finished. Target: done within both its schedule interval and the task
timeout (a fan-out: within its interval, every part within the timeout).
"""

from __future__ import annotations

from django.conf import settings

from config.bench.context import Context
from config.bench.processes import purge_queue, worker_jobs
from crm.schedules import registered_schedules

#: A fan-out (decay's 50 ranges at 1M) may run this many time boxes, up to its interval.
FANOUT_BOXES = 20


def run(ctx: Context) -> None:
    timeout = settings.Q_CLUSTER["timeout"]
    specs = registered_schedules()
    box = min(timeout, ctx.scale.budget * 4)
    longest = max((spec.minutes * 60 for spec in specs if spec.minutes), default=timeout)
    fanout_box = max(box, min(longest, ctx.scale.budget * FANOUT_BOXES))
    results = worker_jobs("periodic", [spec.func for spec in specs], box, per_fanout=fanout_box)
    purge_queue()  # what they queued already ran in the worker; no cluster should run it again
    for spec in specs:
        name = spec.func.rsplit(".", 1)[-1].removesuffix("_task")
        result = results.get(spec.func, {"failed": True})
        limit = min(spec.minutes * 60 if spec.minutes else timeout, timeout)
        if result.get("fanned_out") and spec.minutes:
            # Each queued part is its own task under the timeout; the run as a whole
            # must end before the next one starts.
            limit = spec.minutes * 60
        if "seconds" in result and "cut" not in result:
            slowest = result.get("slowest_part", 0.0)
            ctx.add(
                "periodic",
                name,
                "s",
                result["seconds"],
                target=f"< {limit}",
                # A part past the task timeout would be killed by the cluster.
                passed=result["seconds"] < limit and slowest < timeout,
                note=(
                    f"{result['fanned_out']} parts, the slowest {slowest:.1f} s"
                    if result.get("fanned_out")
                    else ""
                ),
                extra={
                    "outcome": result["outcome"],
                    "schedule": spec.name,
                    "fanned_out": result.get("fanned_out", 0),
                    "slowest_part": slowest,
                },
            )
        else:
            note = "failed; see the log"
            if "cut" in result:
                note = f"cut off after {result['cut']:.0f} s"
                if result.get("parts"):
                    note += f": {result['parts_done']} of {result['parts']} parts done"
            ctx.add("periodic", name, "s", None, target=f"< {limit}", passed=False, note=note)
