"""predictions: the purchase-prediction refit (crm.predictions) at this size.

summary: the one GROUP BY over order activities that every fit starts from (median of
three, in this process). refit / calibrate: the two periodic tasks, each in a worker
process cut off at the task timeout. Target: the nightly refit well inside the django-q2
timeout. The bench data's orders carry no totals, so value predictions are skipped
(each contact says why) and the figure covers the frequency model and all the writes.
"""

from __future__ import annotations

import statistics
import time

from django.conf import settings
from django.utils import timezone

from config.bench.context import Context
from config.bench.processes import worker_jobs
from crm.predictions.selectors import order_summary

TASKS = {
    "refit": "crm.predictions.tasks.refit_predictions_task",
    "calibrate": "crm.predictions.tasks.calibrate_predictions_task",
}


def run(ctx: Context) -> None:
    times, customers = [], 0
    for _ in range(3):
        began = time.perf_counter()
        customers = len(order_summary(until=timezone.now()))
        times.append(time.perf_counter() - began)
    timeout = settings.Q_CLUSTER["timeout"]
    ctx.add(
        "predictions",
        "summary",
        "s",
        statistics.median(times),
        target=f"< {timeout}",
        extra={"customers": customers},
    )
    results = worker_jobs("periodic", list(TASKS.values()), min(timeout, ctx.scale.budget * 4))
    for name, func in TASKS.items():
        result = results.get(func, {"failed": True})
        if "seconds" in result:
            ctx.add(
                "predictions",
                name,
                "s",
                result["seconds"],
                target=f"< {timeout}",
                extra={"outcome": result["outcome"], "customers": customers},
            )
        else:
            note = (
                f"cut off after {result['cut']:.0f} s" if "cut" in result else "failed; see the log"
            )
            ctx.add("predictions", name, "s", None, target=f"< {timeout}", passed=False, note=note)
