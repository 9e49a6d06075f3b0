"""Rising intent: this week's engagement points against the contact's own 8-week baseline."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Activity
from crm.schedules import registered_schedules
from crm.services import ActivityInput, activity_record_batch
from scoring.intent import rising_intent_refresh
from scoring.models import RisingIntent
from scoring.tasks import refresh_rising_intent_task
from tests.factories import ContactFactory, HandoffFactory, ScoreChangeFactory
from tests.scoring.conftest import engagement_rule

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def admin_client_(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def rules(db):
    return {
        "page": engagement_rule("page", points=5, name="Page viewed"),
        "pricing": engagement_rule(
            "pricing", points=10, kind="pricing_viewed", name="Pricing page viewed"
        ),
        "demo": engagement_rule(
            "demo", points=30, kind=Activity.Kind.DEMO_REQUESTED, name="Demo requested"
        ),
    }


def did(contact, kind, days_ago, now):
    """Record one activity through crm (scoring writes the ledger), days_ago before now."""
    activity_record_batch(
        items=[
            ActivityInput(
                kind=kind, source="test", contact_id=contact.pk, occurred_at=now - days_ago * DAY
            )
        ]
    )


def weekly_pages(contact, now, per_week=1):
    for week in range(1, 9):  # the 8 baseline weeks before the last 7 days
        for n in range(per_week):
            did(contact, Activity.Kind.PAGE_VIEWED, 7 * week + 1 + n * 0.1, now)


def test_a_sharp_rise_is_flagged_with_its_figures_and_behaviours(clock, rules):
    now = clock.now
    rising = ContactFactory()
    weekly_pages(rising, now)  # 5 points a week
    for day in range(4):
        did(rising, "pricing_viewed", day + 0.5, now)
    did(rising, Activity.Kind.DEMO_REQUESTED, 1, now)

    result = rising_intent_refresh(now=now)

    assert (result.flagged, result.new, result.cleared) == (1, 1, 0)
    intent = RisingIntent.objects.get(contact=rising)
    assert (intent.recent_points, intent.weekly_baseline) == (70, 5.0)
    assert [(b["label"], b["count"], b["points"]) for b in intent.behaviours] == [
        ("Pricing page viewed", 4, 40),
        ("Demo requested", 1, 30),
    ]


def test_a_steadily_engaged_contact_is_not_flagged(clock, rules):
    now = clock.now
    steady = ContactFactory()
    weekly_pages(steady, now, per_week=8)  # 40 points every week, this week too
    for n in range(8):
        did(steady, Activity.Kind.PAGE_VIEWED, 1 + n * 0.1, now)

    result = rising_intent_refresh(now=now)

    assert result.flagged == 0
    assert not RisingIntent.objects.exists()


def test_a_rise_below_the_floor_is_not_flagged(clock, rules, settings):
    settings.SCORING_INTENT_MIN_POINTS = 30
    quiet = ContactFactory()
    did(quiet, "pricing_viewed", 1, clock.now)  # 10 points against nothing: a rise, but small

    assert rising_intent_refresh(now=clock.now).flagged == 0


def test_the_ratio_and_floor_are_settings(clock, rules, settings):
    contact = ContactFactory()
    weekly_pages(contact, clock.now, per_week=2)  # 10 a week
    did(contact, "pricing_viewed", 1, clock.now)
    did(contact, "pricing_viewed", 2, clock.now)  # 20 this week: 2× the baseline
    settings.SCORING_INTENT_MIN_POINTS = 20

    settings.SCORING_INTENT_RATIO = 3
    assert rising_intent_refresh(now=clock.now).flagged == 0
    settings.SCORING_INTENT_RATIO = 2
    assert rising_intent_refresh(now=clock.now).flagged == 1


def test_a_flag_is_cleared_when_the_rise_no_longer_holds_and_kept_while_it_does(clock, rules):
    contact = ContactFactory()
    for day in range(3):
        did(contact, "pricing_viewed", day + 0.5, clock.now)
    did(contact, Activity.Kind.DEMO_REQUESTED, 1, clock.now)
    first = clock.now
    rising_intent_refresh(now=first)

    # A day later it still holds: the flag stays, first seen when it was.
    rising_intent_refresh(now=clock.advance(days=1))
    assert RisingIntent.objects.get(contact=contact).flagged_at == first

    # Ten days later the burst left the 7-day window: the flag goes.
    result = rising_intent_refresh(now=clock.advance(days=10))
    assert result.cleared == 1
    assert not RisingIntent.objects.filter(contact=contact).exists()


def test_decay_rows_are_not_behaviour(clock, rules):
    contact = ContactFactory()
    reversed_row = ScoreChangeFactory(
        contact=contact, rule=rules["demo"], points=30, occurred_at=clock.now - 30 * DAY
    )
    ScoreChangeFactory(
        contact=contact,
        rule=rules["demo"],
        activity=None,
        reason="decay",
        reverses=reversed_row,
        decay_step=2,
        points=-30,
        occurred_at=clock.now - DAY,
    )
    for day in range(4):
        did(contact, "pricing_viewed", day + 0.5, clock.now)

    rising_intent_refresh(now=clock.now)

    # 40 recent points (not 10), against 30 over 8 weeks.
    intent = RisingIntent.objects.get(contact=contact)
    assert (intent.recent_points, intent.weekly_baseline) == (40, 3.8)


def test_the_refresh_costs_the_same_queries_for_many_contacts(
    clock, rules, django_assert_max_num_queries
):
    def burst(count):
        for _ in range(count):
            contact = ContactFactory()
            for day in range(4):
                did(contact, "pricing_viewed", day + 0.5, clock.now)

    burst(2)
    with django_assert_max_num_queries(8) as few:
        rising_intent_refresh(now=clock.now)
    burst(20)

    with django_assert_max_num_queries(len(few.captured_queries)):
        result = rising_intent_refresh(now=clock.now)

    assert result.flagged == 22


def test_the_task_is_scheduled_hourly_and_reports(clock, rules):
    spec = next(s for s in registered_schedules() if s.func.endswith("refresh_rising_intent_task"))
    assert spec.minutes == 60

    assert refresh_rising_intent_task() == "0 rising (0 new), 0 cleared"


def _flag(contact, **fields):
    return RisingIntent.objects.create(
        contact=contact,
        recent_points=fields.get("recent_points", 70),
        weekly_baseline=fields.get("weekly_baseline", 5.0),
        behaviours=[
            {"rule": "pricing", "label": "Pricing page viewed", "count": 4, "points": 40},
            {"rule": "demo", "label": "Demo requested", "count": 1, "points": 30},
        ],
        flagged_at=fields.get("flagged_at", datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)),
        computed_at=datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC),
    )


def test_the_contact_page_shows_the_flag_in_words(admin_client_):
    contact = ContactFactory()
    _flag(contact)

    page = admin_client_.get(reverse("admin:crm_contact_change", args=[contact.pk]))

    assert (
        "<strong>Rising intent</strong>: Engagement rose from 5 points a week to 70 in the last "
        "7 days: Pricing page viewed ×4, Demo requested." in page.content.decode()
    )


def test_the_contact_page_says_nothing_without_a_flag(admin_client_):
    contact = ContactFactory()

    page = admin_client_.get(reverse("admin:crm_contact_change", args=[contact.pk]))

    assert "Rising intent" not in page.content.decode()


def test_the_handoff_queue_badges_and_filters_rising_contacts_without_a_query_per_row(
    admin_client_,
):
    rising, other = HandoffFactory(), HandoffFactory()
    _flag(rising.contact)
    url = reverse("admin:scoring_handoff_changelist") + "?assigned=everyone"
    with CaptureQueriesContext(connection) as few:
        admin_client_.get(url)
    for _ in range(5):
        _flag(HandoffFactory().contact)

    with CaptureQueriesContext(connection) as many:
        page = admin_client_.get(url)
    filtered = admin_client_.get(url + "&intent=rising")

    assert len(many) == len(few)
    assert page.content.decode().count('class="intent-badge"') == 6
    listed = {handoff.pk for handoff in filtered.context["cl"].result_list}
    assert rising.pk in listed and other.pk not in listed and len(listed) == 6
