"""Demo order histories drawn from the models' own generative process.

    from crm.predictions.demo import demo_seed_orders
    demo_seed_orders(now=now, rng=random.Random(7), contacts=customers)

Each contact becomes a customer whose orders follow BG/NBD (a personal order rate and
a chance to stop buying after each order) with totals from Gamma-Gamma, so the demo's
predictions, calibration chart and segments have something real to find.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence

import numpy as np

from crm.models import Activity, Contact
from crm.predictions import btyd

#: Daily rates: about one order a month while active, a 25% chance to stop after each.
DEMO_FREQUENCY = btyd.BgNbdParams(r=0.9, alpha=30.0, a=1.0, b=3.0)
#: A mean order total of 60 (in each contact's currency).
DEMO_SPEND = btyd.GammaGammaParams(p=6.0, q=4.0, gamma=30.0)
SOURCE = "demo"


def demo_seed_orders(
    *,
    now: datetime.datetime,
    rng: random.Random,
    contacts: Sequence[Contact],
    first_order_within_days: int = 540,
) -> int:
    """Give each contact an order history up to now (order_placed with a total); return count."""
    draw = np.random.default_rng(rng.getrandbits(64))
    tenure = draw.uniform(1, first_order_within_days, size=len(contacts))
    x, _t_x, days = btyd.bgnbd_simulate(DEMO_FREQUENCY, tenure, draw)
    _means, values = btyd.gamma_gamma_simulate(DEMO_SPEND, x + 1, draw)
    orders = []
    for contact, age, history, totals in zip(contacts, tenure, days, values, strict=True):
        first = now - datetime.timedelta(days=float(age))
        for day, total in zip(history, totals, strict=True):
            at = first + datetime.timedelta(days=float(day))
            orders.append(
                Activity(
                    kind=Activity.Kind.ORDER_PLACED,
                    contact=contact,
                    occurred_at=at,
                    source=SOURCE,
                    properties={
                        "order_id": f"demo_{contact.pk}_{len(orders)}",
                        "total": round(float(total), 2),
                        "currency": "EUR",
                    },
                )
            )
    # bulk_create sends no activities_recorded: seeding history must not start sequences.
    Activity.objects.bulk_create(orders, batch_size=2_000)
    return len(orders)


#: How many demo contacts get an order history, and the rule the customer-success home shows.
DEMO_CUSTOMERS = 240
DEMO_SEED = 11
ONBOARDING_RULE = {
    "key": "onboarding-within-7-days",
    "name": "Onboarding within 7 days of an order",
    "start_kind": Activity.Kind.ORDER_PLACED,
    "expected_kind": Activity.Kind.ONBOARDING_MILESTONE_REACHED,
    "within_days": 7,
}


def demo_predictions() -> str:
    """seed_demo's extension: order histories, then every prediction run once, at once."""
    from django.utils import timezone

    from crm.predictions.milestones import milestones_check
    from crm.predictions.models import MilestoneRule
    from crm.predictions.send_times import send_times_refresh
    from crm.predictions.services import calibration_run, predictions_refit

    if MilestoneRule.objects.filter(key=ONBOARDING_RULE["key"]).exists():
        return "already present"
    now = timezone.now()
    contacts = list(Contact.objects.order_by("pk")[:DEMO_CUSTOMERS])
    orders = demo_seed_orders(now=now, rng=random.Random(DEMO_SEED), contacts=contacts)
    MilestoneRule.objects.create(
        **ONBOARDING_RULE, creates_task=False, watch_from=now - datetime.timedelta(days=60)
    )
    refit = predictions_refit(now=now)
    calibration_run(now=now)
    send_times_refresh(now=now)
    missed = milestones_check(now=now)
    return f"{orders} orders; {refit.written} predictions; {missed.missed} missed milestones"
