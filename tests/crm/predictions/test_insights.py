"""Behaviour insights: a planted association is found; shuffled labels find none."""

import datetime
import html
import random
import re
from unittest import mock

import pytest

from crm.models import Activity, Contact
from crm.predictions.insights import insights_report, segment_definition_for
from crm.segments.validation import definition_validate

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
PEOPLE = 400


def _population(*, planted: bool, seed: int) -> None:
    """Half the people convert (demo_requested). Everyone browses; webinar goes with converting.

    With `planted`, 70% of converters and 10% of the others joined a webinar in their window;
    without, who joined is drawn independently of who converted.
    """
    rng = random.Random(seed)
    contacts = Contact.objects.bulk_create(
        Contact(email=f"p{n}@example.com") for n in range(PEOPLE)
    )
    rows = []
    for contact in contacts:
        converts = rng.random() < 0.5
        moment = NOW - rng.uniform(5, 200) * DAY if converts else NOW
        if converts:
            rows.append(Activity(kind="demo_requested", contact=contact, occurred_at=moment,
                                 source="test"))  # fmt: skip
        joined = rng.random() < ((0.7 if converts else 0.1) if planted else 0.4)
        before = [("page_viewed", 2), ("webinar_joined", 1 if joined else 0)]
        for kind, times in before:
            for _ in range(times):
                at = moment - rng.uniform(0.1, 25) * DAY
                rows.append(Activity(kind=kind, contact=contact, occurred_at=at, source="test"))
    Activity.objects.bulk_create(rows)


def test_a_planted_association_is_found_with_its_lift_and_interval(db):
    _population(planted=True, seed=1)

    report = insights_report(conversion_kind="demo_requested", window_days=30, now=NOW)

    assert report.converters + report.others == PEOPLE
    webinar = next(i for i in report.insights if i.kind == "webinar_joined")
    assert webinar.is_associated
    assert webinar.low > 2 and webinar.low < webinar.lift < webinar.high
    assert [i.kind for i in report.associated] == ["webinar_joined"]
    browsing = next(i for i in report.insights if i.kind == "page_viewed")
    assert not browsing.is_associated  # everyone browses: no lift


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_nothing_is_found_when_behaviour_and_conversion_are_independent(db, seed):
    _population(planted=False, seed=seed)

    report = insights_report(conversion_kind="demo_requested", window_days=30, now=NOW)

    assert report.insights and report.associated == ()


def test_the_create_segment_definition_is_a_valid_segment(db):
    definition = segment_definition_for("webinar_joined", 30)

    definition_validate(definition)  # raises on any problem


def test_the_report_page_marks_the_association_and_links_a_prefilled_segment(db, client, superuser):
    _population(planted=True, seed=1)
    client.force_login(superuser)

    # The clock is a true boundary: the report reads timezone.now().
    with mock.patch("django.utils.timezone.now", lambda: NOW):
        page = client.get(
            "/admin/predictions/predictionrun/insights/",
            {"conversion": "demo_requested", "window": 30},
            secure=True,
        )

    text = page.content.decode()
    assert "associations, not causes" in text
    assert "<strong>webinar_joined</strong> ✓" in text
    link = re.search(r'href="(/admin/crm/segment/add/\?[^"]+webinar_joined[^"]*)"', text)
    add_page = client.get(html.unescape(link.group(1)), secure=True).content.decode()
    assert "Did webinar_joined in the last 30 days" in add_page
    assert "webinar_joined" in add_page


def test_the_report_page_refuses_a_kind_that_is_not_a_slug(db, client, superuser):
    client.force_login(superuser)

    page = client.get(
        "/admin/predictions/predictionrun/insights/", {"conversion": "DROP TABLE"}, secure=True
    )

    assert "Name an activity kind" in page.content.decode()
