"""Best send time: from a known history, the audience fallback, and the wait step."""

import datetime

import numpy as np
import pytest

from crm.predictions.models import ContactSendTime
from crm.predictions.send_times import (
    DEFAULT_HOUR,
    best_hour,
    best_send_hour,
    next_best_time,
    send_times_refresh,
)
from sequences.conditions import step_config_errors
from sequences.services.steps import step_run
from tests.factories import ActivityFactory, ContactFactory, EnrollmentFactory

NOW = datetime.datetime(2026, 11, 30, 6, 0, tzinfo=datetime.UTC)  # 07:00 in Berlin


def _opened(contact, utc_hour, days_ago=3, **properties):
    at = (NOW - datetime.timedelta(days=days_ago)).replace(hour=utc_hour)
    return ActivityFactory(
        contact=contact, kind="email_opened", occurred_at=at, properties=properties
    )


def test_best_hour_is_the_busiest_three_hour_window():
    counts = np.zeros(24, dtype=int)
    counts[[8, 9, 10]] = [2, 3, 2]
    counts[20] = 5

    assert best_hour(counts) == 9


def test_a_contact_with_enough_human_opens_gets_their_own_local_hour(db):
    berlin = ContactFactory(time_zone="Europe/Berlin")
    for days_ago in range(1, 7):
        _opened(berlin, utc_hour=18, days_ago=days_ago)  # 19:00 in Berlin (winter, UTC+1)
    for days_ago in range(1, 9):
        _opened(berlin, utc_hour=5, days_ago=days_ago, is_machine_open=True)  # prefetches

    send_times_refresh(now=NOW)

    row = ContactSendTime.objects.get(contact=berlin)
    assert (row.hour, row.source, row.events) == (19, "contact", 6)


def test_too_few_opens_fall_back_to_the_audience_and_say_so(db):
    keen = ContactFactory(time_zone="America/New_York")
    for days_ago in range(1, 11):
        _opened(keen, utc_hour=13, days_ago=days_ago)  # 08:00 in New York (UTC-5)
    shy = ContactFactory(time_zone="Europe/Berlin")
    _opened(shy, utc_hour=22)
    silent = ContactFactory()

    send_times_refresh(now=NOW)

    assert best_send_hour(contact=shy).source == "audience"
    assert best_send_hour(contact=shy).hour == 8  # the audience is mostly keen's 08:00
    assert best_send_hour(contact=silent) == best_send_hour(contact=shy).__class__(8, "audience")


def test_without_any_opens_the_default_hour_is_used(db):
    assert best_send_hour(contact=ContactFactory()).hour == DEFAULT_HOUR
    assert best_send_hour(contact=ContactFactory()).source == "default"


def test_next_best_time_waits_for_the_hour_within_the_window_or_sends_now(db):
    contact = ContactFactory(time_zone="Europe/Berlin")
    ContactSendTime.objects.create(
        contact=contact, hour=19, source="contact", events=9, computed_at=NOW
    )

    soon, _ = next_best_time(contact=contact, now=NOW, within_hours=24)
    too_far, _ = next_best_time(contact=contact, now=NOW, within_hours=6)

    assert soon == datetime.datetime(2026, 11, 30, 18, 0, tzinfo=datetime.UTC)
    assert too_far == NOW


def test_the_wait_step_moves_the_enrollment_to_the_best_time(db):
    enrollment = EnrollmentFactory(contact=ContactFactory(time_zone="Europe/Berlin"))
    ContactSendTime.objects.create(
        contact=enrollment.contact, hour=9, source="contact", events=9, computed_at=NOW
    )
    step = {"key": "best", "type": "wait_until_best_time", "config": {"within_hours": 12}}

    move = step_run(enrollment, step, NOW)

    assert move.at == datetime.datetime(2026, 11, 30, 8, 0, tzinfo=datetime.UTC)
    assert "contact's best hour" in move.reason


@pytest.mark.parametrize("hours", [0, 73, "6", None])
def test_the_wait_step_needs_a_sane_window(hours):
    assert step_config_errors("wait_until_best_time", {"within_hours": hours})


def test_the_contact_page_says_which_send_time_is_used(db, client, superuser):
    contact = ContactFactory(time_zone="Europe/Berlin")
    ContactSendTime.objects.create(
        contact=contact, hour=19, source="contact", events=12, computed_at=NOW
    )
    client.force_login(superuser)

    page = client.get(f"/admin/crm/contact/{contact.pk}/change/", secure=True)

    assert "<strong>19:00</strong> in Europe/Berlin (from their own 12 opens and clicks)" in (
        page.content.decode()
    )
