"""periodic: every task `setup_schedules` registers (crm.schedules), run once at this size.

They run one after the other in a worker process; one still running at the django-q2
task timeout is cut off there (the cluster would kill it too) and the rest go on in a
fresh process. A task that fans out (decay queues one task per contact-id range) is
timed with the tasks it queued, run after it in the same process: the run is done when
they are. Target: done within both its schedule interval and the task timeout.
"""

from __future__ import annotations

from django.conf import settings

from config.bench.context import Context
from config.bench.processes import purge_queue, worker_jobs
from crm.schedules import registered_schedules


def run(ctx: Context) -> None:
    timeout = settings.Q_CLUSTER["timeout"]
    specs = registered_schedules()
    box = min(timeout, ctx.scale.budget * 4)
    results = worker_jobs("periodic", [spec.func for spec in specs], box)
    purge_queue()  # what they queued already ran in the worker; no cluster should run it again
    for spec in specs:
        name = spec.func.rsplit(".", 1)[-1].removesuffix("_task")
        result = results.get(spec.func, {"failed": True})
        limit = min(spec.minutes * 60 if spec.minutes else timeout, timeout)
        if result.get("fanned_out") and spec.minutes:
            # Each queued part is its own task under the timeout; the run as a whole
            # must end before the next one starts.
            limit = spec.minutes * 60
        if "seconds" in result:
            ctx.add(
                "periodic",
                name,
                "s",
                result["seconds"],
                target=f"< {limit}",
                extra={
                    "outcome": result["outcome"],
                    "schedule": spec.name,
                    "fanned_out": result.get("fanned_out", 0),
                },
            )
        else:
            note = (
                f"cut off after {result['cut']:.0f} s" if "cut" in result else "failed; see the log"
            )
            ctx.add("periodic", name, "s", None, target=f"< {limit}", passed=False, note=note)
