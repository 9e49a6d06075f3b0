"""Missed milestones: "X did not happen within N days of Y", once per contact, on the day."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Activity, Task
from crm.predictions.milestones import MISSED_ACTIVITY, milestones_check
from crm.predictions.models import MilestoneRule, MissedMilestone
from tests.factories import ActivityFactory, ContactFactory, UserFactory

START = datetime.datetime(2026, 11, 2, 10, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def rule(db):
    return MilestoneRule.objects.create(
        key="onboarding-after-order",
        name="Onboarding after the first order",
        start_kind="order_placed",
        expected_kind="onboarding_completed",
        within_days=7,
        watch_from=START - 30 * DAY,
        task_owner=UserFactory(username="cs-lead"),
    )


def _did(contact, kind, at):
    return ActivityFactory(contact=contact, kind=kind, occurred_at=at, properties={})


def test_fires_once_at_the_first_check_after_the_deadline(rule):
    owner = UserFactory(username="owner")
    late = ContactFactory(owner=owner)
    _did(late, "order_placed", START)

    before = milestones_check(now=START + 7 * DAY - HOUR)
    on_the_day = milestones_check(now=START + 7 * DAY + HOUR)
    next_day = milestones_check(now=START + 8 * DAY)

    assert (before.missed, on_the_day.missed, next_day.missed) == (0, 1, 0)
    miss = MissedMilestone.objects.get()
    assert miss.contact == late and miss.due_at == START + 7 * DAY
    assert miss.task.owner == owner and miss.task.title.startswith("Missed milestone")
    activity = Activity.objects.get(kind=MISSED_ACTIVITY)
    assert activity.contact == late
    assert activity.properties["rule"] == "onboarding-after-order"


def test_doing_x_in_time_means_no_flag_and_doing_it_late_still_counts_as_missed(rule):
    in_time, too_late, other = ContactFactory.create_batch(3)
    for contact in (in_time, too_late, other):
        _did(contact, "order_placed", START)
    _did(in_time, "onboarding_completed", START + 6 * DAY)
    _did(too_late, "onboarding_completed", START + 8 * DAY)
    _did(other, "page_viewed", START + DAY)

    milestones_check(now=START + 9 * DAY)

    flagged = set(MissedMilestone.objects.values_list("contact_id", flat=True))
    assert flagged == {too_late.pk, other.pk}


def test_the_clock_starts_at_the_first_y_and_ignores_history_before_the_rule(rule):
    old = ContactFactory()
    _did(old, "order_placed", rule.watch_from - DAY)
    repeat = ContactFactory()
    _did(repeat, "order_placed", START)
    _did(repeat, "order_placed", START + 5 * DAY)

    milestones_check(now=START + 7 * DAY + HOUR)

    assert list(MissedMilestone.objects.values_list("contact_id", flat=True)) == [repeat.pk]


def test_the_task_goes_to_the_rules_owner_when_the_contact_has_none(rule):
    _did(ContactFactory(owner=None), "order_placed", START)

    milestones_check(now=START + 8 * DAY)

    assert Task.objects.get().owner == rule.task_owner


def test_a_rule_without_tasks_only_records_the_activity(rule):
    rule.creates_task = False
    rule.save()
    _did(ContactFactory(), "order_placed", START)

    milestones_check(now=START + 8 * DAY)

    assert not Task.objects.exists()
    assert Activity.objects.filter(kind=MISSED_ACTIVITY).count() == 1


def _queries_to_flag(count: int, now: datetime.datetime) -> int:
    for contact in ContactFactory.create_batch(count):
        _did(contact, "order_placed", now - 8 * DAY)
    with CaptureQueriesContext(connection) as queries:
        assert milestones_check(now=now).missed == count
    return len(queries)


def test_the_queries_do_not_grow_with_the_number_of_contacts(rule):
    # One SELECT per rule, then a fixed number of bulk writes (misses, tasks, activities).
    few = _queries_to_flag(3, START + 10 * DAY)
    many = _queries_to_flag(40, START + 20 * DAY)

    assert few == many <= 20


def test_a_missed_milestone_can_start_a_sequence(rule):
    from sequences.models import Enrollment, Trigger
    from tests.sequences.conftest import build_sequence, step

    sequence = build_sequence([step("pause", "wait", days=1)], trigger=None, activate=False)
    Trigger.objects.create(
        sequence=sequence,
        activity_kind=MISSED_ACTIVITY,
        conditions=[{"field": "rule", "op": "eq", "value": "onboarding-after-order"}],
    )
    from sequences.services.sequences import sequence_activate

    sequence_activate(sequence=sequence)
    contact = ContactFactory()
    _did(contact, "order_placed", START)

    milestones_check(now=START + 8 * DAY)

    assert Enrollment.objects.get(sequence=sequence).contact == contact


def test_the_customer_success_home_lists_who_missed_a_milestone(rule, client):
    contact = ContactFactory(first_name="Mia", last_name="Late")
    _did(contact, "order_placed", START)
    milestones_check(now=START + 8 * DAY)
    client.force_login(UserFactory(username="cass", groups=["Customer success"]))

    page = client.get("/admin/", secure=True)

    text = page.content.decode()
    assert "Missed milestones" in text
    assert "no onboarding_completed within 7 days of order_placed" in text
    assert f"/admin/crm/contact/{contact.pk}/change/" in text


def _big_orders_rule(**fields):
    return MilestoneRule.objects.create(
        key="onboarding-after-big-order",
        name="Onboarding after a big order",
        start_kind="order_placed",
        start_conditions={
            "match": "all",
            "conditions": [{"field": "property", "key": "total", "operator": "gt", "value": 100}],
        },
        expected_kind="onboarding_completed",
        within_days=7,
        watch_from=START - 30 * DAY,
        creates_task=False,
        **fields,
    )


def test_y_can_carry_property_conditions(db):
    _big_orders_rule()
    small, big, small_then_big = ContactFactory.create_batch(3)
    ActivityFactory(contact=small, kind="order_placed", occurred_at=START, properties={"total": 40})
    ActivityFactory(contact=big, kind="order_placed", occurred_at=START, properties={"total": 250})
    ActivityFactory(
        contact=small_then_big, kind="order_placed", occurred_at=START, properties={"total": 20}
    )
    ActivityFactory(
        contact=small_then_big,
        kind="order_placed",
        occurred_at=START + 2 * DAY,
        properties={"total": "180.50"},
    )

    first = milestones_check(now=START + 7 * DAY + HOUR)
    second = milestones_check(now=START + 9 * DAY + HOUR)

    # The clock starts at the first order over 100: day 0 for one, day 2 for the other.
    assert (first.missed, second.missed) == (1, 1)
    misses = dict(MissedMilestone.objects.values_list("contact_id", "started_at"))
    assert misses == {big.pk: START, small_then_big.pk: START + 2 * DAY}


def test_x_can_carry_property_conditions(db):
    _big_orders_rule(
        expected_conditions={
            "match": "all",
            "conditions": [
                {"field": "property", "key": "step", "operator": "equals", "value": "finished"}
            ],
        }
    )
    finished, half_way = ContactFactory.create_batch(2)
    for contact in (finished, half_way):
        ActivityFactory(
            contact=contact, kind="order_placed", occurred_at=START, properties={"total": 500}
        )
    ActivityFactory(
        contact=finished,
        kind="onboarding_completed",
        occurred_at=START + DAY,
        properties={"step": "finished"},
    )
    ActivityFactory(
        contact=half_way,
        kind="onboarding_completed",
        occurred_at=START + DAY,
        properties={"step": "profile"},
    )

    milestones_check(now=START + 8 * DAY)

    assert list(MissedMilestone.objects.values_list("contact_id", flat=True)) == [half_way.pk]


def test_conditions_are_checked_with_the_condition_language(db):
    rule = MilestoneRule(
        key="bad",
        name="Bad",
        start_kind="order_placed",
        start_conditions={"match": "all", "conditions": [{"field": "lead_score", "value": 3}]},
        expected_kind="onboarding_completed",
        within_days=7,
        watch_from=START,
    )

    with pytest.raises(ValidationError) as error:
        rule.full_clean()

    assert "start_conditions" in error.value.message_dict
