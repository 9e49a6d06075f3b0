import datetime
import random

import pytest

from crm.predictions.demo import demo_seed_orders
from tests.factories import ContactFactory

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def customers(db):
    """300 contacts with order histories drawn from the demo's BG/NBD + Gamma-Gamma process."""
    contacts = ContactFactory.create_batch(300)
    demo_seed_orders(now=NOW, rng=random.Random(11), contacts=contacts)
    return contacts
