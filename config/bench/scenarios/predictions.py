"""predictions: the periodic tasks of #13 (crm.predictions, scoring's rising intent) at this size.

First the run copy gets order histories (the generated data set has few orders): on
PostgreSQL one set-based INSERT … SELECT gives about 7.7% of contacts (id divisible by 13)
1–15 orders each (most 1–3) over the last two years, with totals, and one milestone rule
("no onboarding within 7 days of an order", watching the last 30 days) is added. Then:

summary: the one GROUP BY over order activities that every fit starts from (median of
three, in this process). refit / calibrate / milestones / send_times / intent: each
periodic task once, in a worker process cut off at the task timeout. Target: each well
inside the django-q2 timeout (and the hourly ones inside the hour).
"""

from __future__ import annotations

import datetime
import statistics
import time

from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.bench.context import Context
from config.bench.processes import worker_jobs
from crm.predictions.models import MilestoneRule
from crm.predictions.selectors import order_summary

TASKS = {
    "refit": "crm.predictions.tasks.refit_predictions_task",
    "calibrate": "crm.predictions.tasks.calibrate_predictions_task",
    "milestones": "crm.predictions.tasks.check_milestones_task",
    "send_times": "crm.predictions.tasks.refresh_send_times_task",
    "intent": "scoring.tasks.refresh_rising_intent_task",
}
#: Every n-th contact (by id) gets an order history.
CUSTOMER_EVERY = 13
#: Order histories: 1 + floor(MAX_EXTRA × u³) orders (u uniform), so most have 1–3.
MAX_EXTRA_ORDERS = 14
HISTORY_DAYS = 730

ORDERS_SQL = f"""
    INSERT INTO crm_activity
        (kind, anonymous_id, occurred_at, recorded_at, source, properties, idempotency_key,
         contact_id)
    SELECT 'order_placed', '', orders.at, now(), 'bench',
           jsonb_build_object('total', orders.total, 'order_id', 'bench-' || c.id || '-' || n),
           '', c.id
    FROM (
        SELECT id, now() - random() * interval '{HISTORY_DAYS} days' AS first_at,
               1 + floor({MAX_EXTRA_ORDERS} * power(random(), 3))::int AS orders
        FROM crm_contact WHERE id % {CUSTOMER_EVERY} = 0
    ) AS c
    CROSS JOIN LATERAL generate_series(1, c.orders) AS n
    CROSS JOIN LATERAL (
        SELECT CASE WHEN n = 1 THEN c.first_at
                    ELSE c.first_at + random() * (now() - c.first_at) END AS at,
               round((20 + 60 * random() + 80 * random() * random())::numeric, 2) AS total
    ) AS orders
"""


def add_order_histories(ctx: Context) -> int:
    """Give the run copy order histories with totals (PostgreSQL); the rows added."""
    if connection.vendor != "postgresql":
        ctx.say("  predictions: order histories are added on PostgreSQL only")
        return 0
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.13)")
        cursor.execute(ORDERS_SQL)
        added = cursor.rowcount
        cursor.execute("ANALYZE crm_activity")
    MilestoneRule.objects.get_or_create(
        key="bench-onboarding",
        defaults={
            "name": "Onboarding after an order",
            "start_kind": "order_placed",
            "expected_kind": "onboarding_milestone_reached",
            "within_days": 7,
            "creates_task": True,
            "watch_from": timezone.now() - datetime.timedelta(days=30),
        },
    )
    ctx.say(f"  predictions: {added} orders added in {time.perf_counter() - began:.0f} s")
    return added


def run(ctx: Context) -> None:
    added = add_order_histories(ctx)
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
        extra={"customers": customers, "orders_added": added},
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
