import datetime
import random

from crm.models import Activity
from crm.predictions import services
from crm.predictions.demo import demo_seed_orders
from crm.predictions.models import PredictionRun
from tests.factories import ContactFactory

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def test_demo_orders_are_past_orders_with_totals_that_the_models_can_fit(db):
    contacts = ContactFactory.create_batch(150)

    created = demo_seed_orders(now=NOW, rng=random.Random(3), contacts=contacts)

    orders = Activity.objects.filter(kind="order_placed")
    assert orders.count() == created >= len(contacts)  # everyone has a first order
    assert not orders.filter(occurred_at__gt=NOW).exists()
    assert all(order.properties["total"] > 0 for order in orders)
    assert services.predictions_refit(now=NOW).run.status == PredictionRun.Status.OK
