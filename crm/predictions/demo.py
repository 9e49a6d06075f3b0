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
