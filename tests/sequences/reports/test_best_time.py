"""Mailed at the best send time vs not: the wait step's decision splits the next email."""

import datetime

import pytest
from django.urls import reverse

from crm.predictions.models import ContactSendTime
from sequences.models import EspEvent
from sequences.reports.best_time import best_time_charts, best_time_results
from sequences.services.steps import step_run
from tests.factories import (
    ContactFactory,
    EnrollmentEventFactory,
    EnrollmentFactory,
    EspEventFactory,
    OutboundMessageFactory,
    SequenceVersionFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 30, 6, 0, tzinfo=datetime.UTC)
STEPS = [
    {"key": "welcome", "type": "send_email", "config": {}},
    {"key": "best", "type": "wait_until_best_time", "config": {"within_hours": 12}},
    {"key": "offer", "type": "send_email", "config": {}},
]


def _mailed(version, decision, *, opened=False, clicked=False, converted=False):
    enrollment = EnrollmentFactory(version=version, state="converted" if converted else "active")
    OutboundMessageFactory(enrollment=enrollment, step="welcome", created_at=NOW, sent_at=NOW)
    EnrollmentEventFactory(
        enrollment=enrollment, step="best", kind=decision, occurred_at=NOW + datetime.timedelta(1)
    )
    message = OutboundMessageFactory(
        enrollment=enrollment,
        step="offer",
        created_at=NOW + datetime.timedelta(days=1, hours=3),
        sent_at=NOW + datetime.timedelta(days=1, hours=3),
    )
    for kind, did in ((EspEvent.Kind.OPENED, opened), (EspEvent.Kind.CLICKED, clicked)):
        if did:
            EspEventFactory(message=message, kind=kind, event_type=kind)


def test_results_split_the_email_after_the_wait_by_its_decision():
    version = SequenceVersionFactory(steps=STEPS)
    for n in range(4):  # 4 at their own best hour: 3 opened, 2 clicked, 1 converted
        _mailed(version, "best_time_contact", opened=n < 3, clicked=n < 2, converted=n == 0)
    _mailed(version, "best_time_audience", opened=True)
    for n in range(2):  # 2 outside the window: 1 opened
        _mailed(version, "best_time_outside_window", opened=n == 0)

    results = {row["group"]: row for row in best_time_results(sequence=version.sequence)}

    assert set(results) == {"best_time_contact", "best_time_audience", "best_time_outside_window"}
    own = results["best_time_contact"]
    assert (own["sent"], own["opened"], own["clicked"], own["converted"]) == (4, 3, 2, 1)
    assert (own["open_rate"], own["click_rate"], own["conversion_rate"]) == (0.75, 0.5, 0.25)
    assert results["best_time_audience"]["sent"] == 1
    assert results["best_time_outside_window"]["open_rate"] == 0.5


def test_a_sequence_without_a_best_time_step_shows_no_table():
    version = SequenceVersionFactory(steps=[STEPS[0]])
    OutboundMessageFactory(enrollment=EnrollmentFactory(version=version), step="welcome")

    assert best_time_charts(sequence=version.sequence) == []


def test_the_results_page_shows_the_table_with_its_caveat(client, superuser):
    version = SequenceVersionFactory(steps=STEPS)
    _mailed(version, "best_time_contact", opened=True)
    client.force_login(superuser)

    page = client.get(
        reverse("admin:revenue_sequenceresult_change", args=[version.sequence.pk])
        + "?since=2026-11-01&until=2026-12-31"
    )

    html = page.content.decode()
    assert "Mailed at the best send time vs not" in html
    assert "association, not as the effect" in html


@pytest.mark.parametrize(
    ("hour", "within", "kind"),
    [(9, 12, "best_time_contact"), (23, 4, "best_time_outside_window")],
)
def test_the_wait_step_records_its_decision_as_the_event(hour, within, kind):
    enrollment = EnrollmentFactory(contact=ContactFactory(time_zone="Europe/Berlin"))
    ContactSendTime.objects.create(
        contact=enrollment.contact, hour=hour, source="contact", events=9, computed_at=NOW
    )
    step = {"key": "best", "type": "wait_until_best_time", "config": {"within_hours": within}}

    assert step_run(enrollment, step, NOW).event == kind


def test_inside_the_best_hour_is_at_the_best_time():
    enrollment = EnrollmentFactory(contact=ContactFactory(time_zone="UTC"))
    ContactSendTime.objects.create(
        contact=enrollment.contact, hour=6, source="audience", events=9, computed_at=NOW
    )
    step = {"key": "best", "type": "wait_until_best_time", "config": {"within_hours": 2}}

    move = step_run(enrollment, step, NOW + datetime.timedelta(minutes=20))

    assert move.event == "best_time_audience"
