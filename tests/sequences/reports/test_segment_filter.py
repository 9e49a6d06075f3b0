"""The funnel and holdout filtered by a segment: only its current members' enrollments."""

import datetime

import pytest

from sequences.reports.selectors import Period, sequence_results
from tests.factories import ConsentEntryFactory, ContactFactory, SegmentMembershipFactory
from tests.sequences.reports.conftest import esp

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_entered(mailed, record, newsletter, clock):
    """Ada (mailed fixture) clicked and bought for 80 EUR; Bob entered and got the email only."""
    sequence, ada, message = mailed
    esp(record, ada, "email_clicked", message)
    record(ada, "order_placed", order_id="A1", total="80.00", currency="EUR")
    bob = ContactFactory(first_name="Bob")
    ConsentEntryFactory(contact=bob, topic=newsletter, occurred_at=clock.now)
    record(bob, "form_submitted")
    return sequence, ada, bob


def funnel(results: dict) -> dict[str, int]:
    return {stage["stage"]: stage["count"] for stage in results["funnel"]}


def test_segment_filter_counts_only_its_current_members(two_entered, clock):
    sequence, ada, bob = two_entered
    buyers = SegmentMembershipFactory(contact=ada, entered_at=clock.now).segment
    former = SegmentMembershipFactory(contact=bob, entered_at=clock.now, exited_at=clock.now)

    everyone = sequence_results(sequence=sequence)
    only_ada = sequence_results(sequence=sequence, segment=buyers)
    nobody = sequence_results(sequence=sequence, segment=former.segment)

    assert funnel(everyone)["enrolled"] == 2 and funnel(everyone)["sent"] == 2
    assert funnel(only_ada)["enrolled"] == 1
    assert funnel(only_ada)["sent"] == funnel(only_ada)["clicked"] == 1
    assert only_ada["holdout"]["mailed"]["revenue"] == 80.0
    assert only_ada["holdout"]["mailed"]["conversion_rate"] == 1.0
    assert only_ada["segment"] == {"key": buyers.key, "name": buyers.name}
    # Bob left his segment: nobody in it now.
    assert funnel(nobody)["enrolled"] == 0
    # The filter is the same as the counters for the same people (Ada alone: cohorts agree).
    assert everyone["holdout"]["mailed"]["revenue"] == only_ada["holdout"]["mailed"]["revenue"]


def test_segment_filter_keeps_the_period(two_entered, clock):
    sequence, ada, _ = two_entered
    buyers = SegmentMembershipFactory(contact=ada, entered_at=clock.now).segment
    today = clock.now.date()

    before = Period(since=today - datetime.timedelta(days=30), until=today - datetime.timedelta(1))

    assert (
        funnel(sequence_results(sequence=sequence, segment=buyers, period=before))["enrolled"] == 0
    )
    assert (
        funnel(sequence_results(sequence=sequence, segment=buyers, period=Period(today, today)))[
            "enrolled"
        ]
        == 1
    )


def test_segment_filter_is_one_query_whatever_the_enrollments(
    two_entered, clock, django_assert_num_queries
):
    sequence, ada, bob = two_entered
    segment = SegmentMembershipFactory(contact=ada, entered_at=clock.now).segment
    SegmentMembershipFactory(contact=bob, segment=segment, entered_at=clock.now)
    sequence_results(sequence=sequence, segment=segment)  # warm the version lookup

    with django_assert_num_queries(2):  # the counters, the segment's enrollment facts
        sequence_results(sequence=sequence, segment=segment)


def test_results_page_offers_and_applies_the_segment_filter(client, superuser, two_entered, clock):
    sequence, ada, _ = two_entered
    segment = SegmentMembershipFactory(contact=ada, entered_at=clock.now).segment
    client.force_login(superuser)
    url = f"/admin/revenue/sequenceresult/{sequence.pk}/change/"

    html = client.get(url).content.decode()
    filtered = client.get(f"{url}?segment={segment.pk}").content.decode()

    assert f'<option value="{segment.pk}">{segment.name}</option>' in html
    assert 'id="revenue-segment"' not in html
    assert 'id="revenue-segment"' in filtered and f"selected>{segment.name}" in filtered
