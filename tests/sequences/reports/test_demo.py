"""demo_seed_revenue: every report has something to show; one sequence lifts, one does not."""

import datetime
import random

import pytest

from crm.models import Contact
from sequences.models import Enrollment
from sequences.reports.demo import demo_seed_revenue
from sequences.reports.selectors import (
    engagement_by_topic,
    repeat_purchases,
    revenue_by_day,
    sequence_results,
)

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 3, 10, 10, 0, tzinfo=datetime.UTC)


@pytest.fixture
def contacts(db):
    return Contact.objects.bulk_create(
        Contact(email=f"demo{n}@example.com", vouched_at=NOW, vouched_by="staff")
        for n in range(400)
    )


def test_demo_history_shows_a_lift_in_one_sequence_and_none_in_the_other(contacts):
    lifted, flat = demo_seed_revenue(now=NOW, rng=random.Random(7), contacts=contacts)

    lift = sequence_results(sequence=lifted)["holdout"]["lift"]
    no_lift = sequence_results(sequence=flat)["holdout"]["lift"]
    assert lift["status"] == "significant" and lift["difference"] > 0.1
    assert no_lift["status"] == "not yet significant"
    results = sequence_results(sequence=lifted)
    funnel = {stage["stage"]: stage["count"] for stage in results["funnel"]}
    assert funnel["sent"] > funnel["opened"] > funnel["clicked"] > 0
    assert funnel["machine_opened"] > 0
    assert results["attribution"]["touch"]["conversions"] > 0
    assert results["holdout"]["holdout"]["contacts"] > 0
    assert revenue_by_day() and repeat_purchases() and engagement_by_topic()
    assert not Enrollment.objects.filter(state__in=Enrollment.LIVE_STATES).exists()


def test_demo_seed_runs_once(contacts):
    demo_seed_revenue(now=NOW, rng=random.Random(7), contacts=contacts[:20])

    assert demo_seed_revenue(now=NOW, rng=random.Random(7), contacts=contacts[:20]) == []
