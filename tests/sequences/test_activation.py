"""Activation with review: the admin's confirm pages, the review's contents, status read-only."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from sequences.models import Enrollment, Sequence, Trigger
from sequences.services import sequence_activate, sequence_activation_review
from tests.factories import ContactFactory, SegmentFactory, SegmentMembershipFactory
from tests.sequences.conftest import build_sequence, email_step, step

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


def url(verb: str, sequence: Sequence) -> str:
    return reverse(f"admin:sequences_sequence_{verb}", args=[sequence.pk])


def draft(**fields) -> Sequence:
    return build_sequence(
        [step("wait", "wait_duration", duration={"days": 1, "hours": 2}), email_step("hello")],
        activate=False,
        **fields,
    )


# --- The admin flow -------------------------------------------------------------------------


def test_change_page_offers_activate_and_the_review_page_shows_what_will_happen(
    marketer_client, settings
):
    settings.SEQUENCES_QUIET_HOURS = "21:00-08:00"
    sequence = draft()

    change = marketer_client.get(reverse("admin:sequences_sequence_change", args=[sequence.pk]))
    page = marketer_client.get(url("activate", sequence))

    assert url("activate", sequence) in change.content.decode()
    assert url("pause", sequence) not in change.content.decode()
    text = page.content.decode()
    assert page.status_code == 200
    assert "No blockers." in text
    assert "No goal: nobody will ever count as converted." in text  # a warning, shown
    assert "Nobody enters at activation" in text
    assert "future behaviour only" in text.lower()
    assert "First email: step hello, after 1 day, 2 hours." in text
    assert "quiet hours (21:00-08:00" in text
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.DRAFT  # GET changes nothing


def test_confirming_activates_through_the_service(marketer_client, marketer):
    sequence = draft()

    response = marketer_client.post(url("activate", sequence))

    assert response.status_code == 302
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.ACTIVE
    assert sequence.current_version.number == 1
    assert sequence.current_version.created_by == marketer


def test_blockers_are_listed_and_stop_activation(marketer_client):
    sequence = draft(owner=None)

    page = marketer_client.get(url("activate", sequence))
    posted = marketer_client.post(url("activate", sequence))

    assert "The sequence has no owner." in page.content.decode()
    assert 'name="confirm"' not in page.content.decode()
    assert posted.status_code == 200
    assert (
        "was not activated: The sequence has no owner."
        in [str(m) for m in get_messages(posted.wsgi_request)][0]
    )
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.DRAFT


def test_pause_and_resume_have_confirm_pages(marketer_client):
    sequence = build_sequence([email_step("hello")])

    pause_page = marketer_client.get(url("pause", sequence))
    marketer_client.post(url("pause", sequence))
    sequence.refresh_from_db()
    paused = sequence.status
    resume_page = marketer_client.get(url("resume", sequence))
    marketer_client.post(url("resume", sequence))
    sequence.refresh_from_db()

    assert "holds every contact where they are" in pause_page.content.decode()
    assert paused == Sequence.Status.PAUSED
    assert "continues each held contact" in resume_page.content.decode()
    assert sequence.status == Sequence.Status.ACTIVE


def test_resuming_a_draft_is_refused_with_a_reason(marketer_client):
    sequence = draft()

    page = marketer_client.get(url("resume", sequence))
    marketer_client.post(url("resume", sequence))

    assert "cannot be resumed from “Draft”" in page.content.decode()
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.DRAFT


def test_sales_cannot_open_or_post_the_confirm_pages(client, salesperson):
    sequence = draft()
    client.force_login(salesperson)

    assert client.get(url("activate", sequence)).status_code == 403
    assert client.post(url("activate", sequence)).status_code == 403
    sequence.refresh_from_db()
    assert sequence.status == Sequence.Status.DRAFT


def test_list_action_leads_to_the_review_instead_of_publishing(marketer_client):
    sequence = draft()
    other = draft(key="other")
    changelist = reverse("admin:sequences_sequence_changelist")

    one = marketer_client.post(
        changelist, {"action": "activate", "_selected_action": [sequence.pk]}
    )
    two = marketer_client.post(
        changelist, {"action": "activate", "_selected_action": [sequence.pk, other.pk]}
    )

    assert one.status_code == 302 and one["Location"] == url("activate", sequence)
    assert two.status_code == 302  # back to the list with a message
    assert set(Sequence.objects.values_list("status", flat=True)) == {Sequence.Status.DRAFT}


@pytest.mark.parametrize("page", ["add", "change"])
def test_status_is_not_editable_on_the_form(marketer_client, page):
    sequence = draft()
    target = (
        reverse("admin:sequences_sequence_add")
        if page == "add"
        else reverse("admin:sequences_sequence_change", args=[sequence.pk])
    )

    response = marketer_client.get(target)

    assert response.status_code == 200
    assert 'name="status"' not in response.content.decode()


# --- What the review says -------------------------------------------------------------------


def test_new_segment_with_existing_members_counts_who_enters_now(newsletter):
    segment = SegmentFactory(key="leads")
    ContactFactory.create_batch(3, lifecycle_stage_id="new_lead")
    ContactFactory(lifecycle_stage_id="subscriber")
    sequence = draft(trigger=None)
    sequence.triggers.create(
        type=Trigger.Type.SEGMENT_ENTERED, segment=segment, include_existing_members=True
    )

    review = sequence_activation_review(sequence=sequence)

    assert review.enters_now == 3
    assert not review.only_future
    assert "first evaluation will enroll the 3 contacts" in review.entries[0].explanation


def test_audience_segment_narrows_the_count(newsletter):
    segment = SegmentFactory(key="leads")
    audience = SegmentFactory(key="audience")
    leads = ContactFactory.create_batch(3, lifecycle_stage_id="new_lead")
    SegmentMembershipFactory(segment=audience, contact=leads[0])
    sequence = draft(trigger=None, audience_segment=audience)
    sequence.triggers.create(
        type=Trigger.Type.SEGMENT_ENTERED, segment=segment, include_existing_members=True
    )

    assert sequence_activation_review(sequence=sequence).enters_now == 1


def test_an_evaluated_segment_counts_its_current_members_who_enter_at_activation(newsletter):
    segment = SegmentFactory(key="leads", last_evaluated_at=timezone.now(), member_count=3)
    audience = SegmentFactory(key="audience")
    members = ContactFactory.create_batch(3)
    for contact in members:
        SegmentMembershipFactory(segment=segment, contact=contact)
    SegmentMembershipFactory(segment=audience, contact=members[0])
    SegmentMembershipFactory(segment=audience, contact=members[1])
    sequence = draft(trigger=None, audience_segment=audience)
    sequence.triggers.create(
        type=Trigger.Type.SEGMENT_ENTERED, segment=segment, include_existing_members=True
    )

    review = sequence_activation_review(sequence=sequence)

    assert review.enters_now == 2
    assert "Activating enrolls the segment's 2 current members" in review.entries[0].explanation


def test_first_activation_enrolls_an_evaluated_segments_members_once(
    newsletter, django_capture_on_commit_callbacks
):
    segment = SegmentFactory(key="leads", last_evaluated_at=timezone.now(), member_count=2)
    members = ContactFactory.create_batch(2)
    for contact in members:
        SegmentMembershipFactory(segment=segment, contact=contact)
    left = ContactFactory()
    SegmentMembershipFactory(segment=segment, contact=left, exited_at=timezone.now())
    sequence = draft(trigger=None)
    sequence.triggers.create(
        type=Trigger.Type.SEGMENT_ENTERED, segment=segment, include_existing_members=True
    )

    with django_capture_on_commit_callbacks(execute=True):
        sequence_activate(sequence=sequence)
    sequence.refresh_from_db()
    review = sequence_activation_review(sequence=sequence)
    with django_capture_on_commit_callbacks(execute=True) as again:
        sequence_activate(sequence=sequence)

    enrolled = set(Enrollment.objects.filter(sequence=sequence).values_list("contact", flat=True))
    assert enrolled == {contact.pk for contact in members}
    assert review.only_future  # already included: a later activation says so
    assert "included when the sequence was first activated" in review.entries[0].explanation
    assert again == []  # no second enrollment task


def test_without_include_existing_members_nobody_enters_at_activation(newsletter):
    segment = SegmentFactory(key="leads", last_evaluated_at=timezone.now(), member_count=5)
    sequence = draft(trigger=None)
    sequence.triggers.create(type=Trigger.Type.SEGMENT_ENTERED, segment=segment)

    review = sequence_activation_review(sequence=sequence)

    assert review.only_future
    assert "its 5 current members do not enter" in review.entries[0].explanation


def test_first_send_follows_waits_and_stops_at_a_branch(newsletter):
    timed = build_sequence(
        [step("morning", "wait_until_time", time="09:00"), email_step("hi")],
        activate=False,
        key="timed",
    )
    branching = build_sequence(
        [step("check", "branch_if", condition={"activity": "email_clicked"}), email_step("hi")],
        activate=False,
        key="branching",
    )
    silent = build_sequence([step("stop", "end")], activate=False, key="silent")

    assert "after at the next 09:00" in sequence_activation_review(sequence=timed).first_send
    assert "depends on the branch at step check" in (
        sequence_activation_review(sequence=branching).first_send
    )
    assert sequence_activation_review(sequence=silent).first_send == "The sequence sends no email."


def test_transactional_sequences_mention_no_quiet_hours(db):
    sequence = draft(is_transactional=True, key="receipts")

    assert sequence_activation_review(sequence=sequence).quiet_hours == ""


def test_an_active_sequence_offers_pause_and_a_new_version(marketer_client):
    sequence = build_sequence([email_step("hello")])

    change = marketer_client.get(reverse("admin:sequences_sequence_change", args=[sequence.pk]))
    page = marketer_client.get(url("activate", sequence))

    assert url("pause", sequence) in change.content.decode()
    assert url("resume", sequence) not in change.content.decode()
    assert "publishes the current steps as a new version" in page.content.decode()
