"""Reads: the sendable count, the preview, and tracked members."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Contact
from crm.segment_selectors import (
    contacts_sendable,
    segment_contacts,
    segment_members,
    segment_preview,
)
from crm.services import consent_grant, consent_withdraw
from tests.crm.segments.conftest import cond, group
from tests.factories import (
    ActivityFactory,
    ConsentTopicFactory,
    ContactFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    SuppressionFactory,
)

pytestmark = pytest.mark.django_db


def test_sendable_means_consented_for_the_topic_and_not_suppressed():
    newsletter, offers = ConsentTopicFactory(key="newsletter"), ConsentTopicFactory(key="offers")
    sendable, suppressed, withdrawn, other_topic, _never = (
        ContactFactory(email=f"{name}@example.com")
        for name in ("sendable", "suppressed", "withdrawn", "other", "never")
    )
    for contact in (sendable, suppressed, withdrawn):
        consent_grant(contact=contact, topic=newsletter, method="form", source="test")
    consent_withdraw(contact=withdrawn, topic=newsletter, method="form", source="test")
    consent_grant(contact=other_topic, topic=offers, method="form", source="test")
    SuppressionFactory(email="suppressed@example.com")

    found = contacts_sendable(Contact.objects.all(), topic=newsletter)

    assert list(found.values_list("email", flat=True)) == ["sendable@example.com"]


def test_the_preview_counts_the_sendable_part_of_the_segment():
    topic = ConsentTopicFactory(key="newsletter")
    lead = ContactFactory(lifecycle_stage_id="new_lead")
    customer = ContactFactory(lifecycle_stage_id="new_customer")
    for contact in (lead, customer):
        consent_grant(contact=contact, topic=topic, method="form", source="test")

    preview = segment_preview(
        definition=group(cond("lifecycle_stage", "in", ["new_lead"])), topic=topic
    )

    assert (preview.count, preview.sendable_count) == (1, 1)
    assert preview.sample == (lead,)


def test_the_preview_counts_members_and_sendable_ones_in_one_pass():
    topic = ConsentTopicFactory(key="newsletter")
    leads = ContactFactory.create_batch(4, lifecycle_stage_id="new_lead")
    for contact in leads[:3]:
        consent_grant(contact=contact, topic=topic, method="form", source="test")
    SuppressionFactory(email=leads[0].email)
    definition = group(cond("lifecycle_stage", "in", ["new_lead"]))

    with CaptureQueriesContext(connection) as queries:
        preview = segment_preview(definition=definition, topic=topic)

    assert (preview.count, preview.sendable_count) == (4, 2)
    # The definition is evaluated by the counting query and the sample's, not a third
    # time for the sendable count (the other queries load references for validation).
    counting = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counting) == 1


def test_the_preview_reports_problems_instead_of_counting():
    preview = segment_preview(definition=group())

    assert not preview.is_valid
    assert [str(problem) for problem in preview.problems] == [
        "The segment is empty: add a condition or remove the group."
    ]


def test_members_are_the_tracked_current_ones():
    segment = SegmentFactory()
    current = SegmentMembershipFactory(segment=segment).contact
    SegmentMembershipFactory(segment=segment, exited_at="2026-01-01T00:00:00Z")
    SegmentMembershipFactory()

    assert list(segment_members(segment=segment)) == [current]


#: Every kind of subquery the compiler writes: consent, behaviour (grouped and not), deals.
EVERY_SHAPE = group(
    cond("consent", "granted", topic="newsletter"),
    group(
        cond("activity", "at_least", kind="page_viewed", count=3, days=30),
        cond("country", "in", ["DE"]),
        match="any",
    ),
    group(
        cond("open_deal", "any_stage"),
        cond("activity", "none", kind="email_opened", days=90),
        cond("suppressed", "is"),
        match="none",
    ),
)


def _people(count: int, topic) -> None:
    for contact in ContactFactory.create_batch(count, country="DE"):
        consent_grant(contact=contact, topic=topic, method="form", source="test")
        for _ in range(3):
            ActivityFactory(contact=contact, kind="page_viewed")


def test_counting_a_segment_is_one_query_whatever_its_size(django_assert_num_queries):
    topic = ConsentTopicFactory(key="newsletter")
    for size in (2, 20):
        _people(size, topic)
        matching = segment_contacts(definition=EVERY_SHAPE)

        with django_assert_num_queries(1):
            matching.count()


def test_the_preview_costs_the_same_queries_whatever_the_size():
    topic = ConsentTopicFactory(key="newsletter")

    def queries_for(size: int) -> int:
        _people(size, topic)
        with CaptureQueriesContext(connection) as captured:
            preview = segment_preview(definition=EVERY_SHAPE, topic=topic)
        assert preview.is_valid
        return len(captured)

    assert queries_for(2) == queries_for(25)
