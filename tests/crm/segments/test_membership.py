"""Membership tracking: touched contacts re-checked on commit, entries and exits recorded once."""

import datetime
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Activity, Contact, Segment, SegmentCountSnapshot, SegmentMembership
from crm.receivers import refresh_segments_for_activities
from crm.segment_selectors import segment_members
from crm.services import ActivityInput, activity_record, activity_record_batch, contact_update
from crm.services import segments as segments_service
from crm.services.segments import (
    MembershipChanges,
    segment_create,
    segment_evaluate,
    segment_memberships_refresh,
    segment_update,
)
from crm.signals import activities_recorded
from crm.tasks import (
    evaluate_segment_task,
    evaluate_segments_task,
    refresh_recently_changed_contacts_task,
    refresh_segment_memberships_task,
)
from tests.crm.segments.conftest import cond, group
from tests.factories import ActivityFactory, ConsentTopicFactory, ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db

PRICING_TWICE = group(
    cond(
        "activity",
        "at_least",
        kind="page_viewed",
        count=2,
        days=7,
        where=[{"key": "path", "operator": "contains", "value": "/pricing"}],
    )
)
NO_OPEN_IN_90_DAYS = group(cond("activity", "none", kind="email_opened", days=90))


def _recorded(contact, kind: str, segment: Segment) -> list[Activity]:
    return list(
        Activity.objects.filter(contact=contact, kind=kind, properties__segment=segment.key)
    )


def _view_pricing(contact, key: str):
    return activity_record(
        kind="page_viewed",
        source="web",
        contact=contact,
        properties={"path": "/pricing"},
        idempotency_key=key,
    )


@pytest.fixture
def create(django_capture_on_commit_callbacks):
    """Create a segment and run its first evaluation, as the worker would on commit."""

    def create_segment(definition: dict, key: str = "pricing") -> Segment:
        with django_capture_on_commit_callbacks(execute=True):
            segment = segment_create(key=key, name=key.title(), definition=definition)
        segment.refresh_from_db()
        return segment

    return create_segment


def test_a_contact_enters_in_the_task_run_that_records_the_qualifying_activity(
    create, django_capture_on_commit_callbacks
):
    contact = ContactFactory()
    segment = create(PRICING_TWICE)
    _view_pricing(contact, "view-1")

    with django_capture_on_commit_callbacks(execute=True):
        _view_pricing(contact, "view-2")

    membership = SegmentMembership.objects.get(segment=segment, contact=contact)
    assert membership.exited_at is None
    [entered] = _recorded(contact, "segment_entered", segment)
    assert entered.source == "segments"
    assert entered.properties == {"segment": "pricing", "segment_name": "Pricing", "entry": 1}
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_an_event_delivered_twice_records_segment_entered_once(
    create, django_capture_on_commit_callbacks
):
    contact = ContactFactory()
    segment = create(PRICING_TWICE)
    _view_pricing(contact, "view-1")

    for _delivery in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            _view_pricing(contact, "view-2")

    assert len(_recorded(contact, "segment_entered", segment)) == 1


def test_a_task_delivered_twice_records_segment_entered_once(create):
    contact = ContactFactory()
    segment = create(PRICING_TWICE)
    _view_pricing(contact, "view-1")
    _view_pricing(contact, "view-2")

    refresh_segment_memberships_task([contact.pk])
    refresh_segment_memberships_task([contact.pk])

    assert len(_recorded(contact, "segment_entered", segment)) == 1
    assert SegmentMembership.objects.filter(segment=segment).count() == 1


def test_leaving_and_coming_back_records_each_step_once(create):
    contact = ContactFactory(lifecycle_stage_id="engaged_lead")
    segment = create(group(cond("lifecycle_stage", "in", ["engaged_lead"])))

    contact_update(contact=contact, country="AT")  # irrelevant change: nothing happens
    segment_memberships_refresh(contact_ids=[contact.pk])
    contact.lifecycle_stage_id = "opportunity"
    contact.save()
    segment_memberships_refresh(contact_ids=[contact.pk])
    segment_memberships_refresh(contact_ids=[contact.pk])
    contact.lifecycle_stage_id = "engaged_lead"
    contact.save()
    segment_memberships_refresh(contact_ids=[contact.pk])

    entries = _recorded(contact, "segment_entered", segment)
    exits = _recorded(contact, "segment_exited", segment)
    assert [activity.properties["entry"] for activity in entries] == [2, 1]  # newest first
    assert [activity.properties["entry"] for activity in exits] == [1]
    membership = SegmentMembership.objects.get(segment=segment, contact=contact)
    assert membership.entry_count == 2
    assert membership.exited_at is None
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_segment_activities_do_not_trigger_another_refresh(django_capture_on_commit_callbacks):
    contact = ContactFactory()
    SegmentFactory()
    activity = ActivityFactory.build(contact=contact, kind="segment_entered")

    with django_capture_on_commit_callbacks() as callbacks:
        refresh_segments_for_activities(sender=Activity, activities=[activity])

    assert callbacks == []


def test_one_refresh_task_is_queued_per_recorded_batch(django_capture_on_commit_callbacks):
    first, second = ContactFactory(), ContactFactory()
    items = [
        ActivityInput(kind="page_viewed", source="web", contact_id=contact.pk)
        for contact in (first, second, first)
    ]

    with (
        mock.patch("django_q.tasks.async_task") as async_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        activity_record_batch(items=items)

    refreshes = [
        call.args
        for call in async_task.call_args_list
        if call.args[:1] == ("crm.tasks.refresh_segment_memberships_task",)
    ]
    assert refreshes == [("crm.tasks.refresh_segment_memberships_task", [first.pk, second.pk])]


def test_creating_a_segment_evaluates_everyone_and_marks_initial_entries(create):
    member = ContactFactory(lifecycle_stage_id="opportunity")
    ContactFactory(lifecycle_stage_id="new_lead")

    segment = create(group(cond("lifecycle_stage", "in", ["opportunity"])), key="opportunities")

    [entered] = _recorded(member, "segment_entered", segment)
    assert entered.properties["initial"] is True
    assert segment.member_count == 1
    assert segment.last_evaluated_at is not None
    [snapshot] = SegmentCountSnapshot.objects.filter(segment=segment)
    assert (snapshot.member_count, snapshot.entered, snapshot.exited) == (1, 1, 0)


def test_changing_the_definition_re_evaluates_members(create, django_capture_on_commit_callbacks):
    lead = ContactFactory(lifecycle_stage_id="new_lead")
    opportunity = ContactFactory(lifecycle_stage_id="opportunity")
    segment = create(group(cond("lifecycle_stage", "in", ["new_lead"])), key="stage")

    with django_capture_on_commit_callbacks(execute=True):
        segment_update(
            segment=segment, definition=group(cond("lifecycle_stage", "in", ["opportunity"]))
        )

    assert len(_recorded(lead, "segment_exited", segment)) == 1
    [entered] = _recorded(opportunity, "segment_entered", segment)
    assert "initial" not in entered.properties
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_the_sweep_catches_conditions_that_change_with_time_alone(frozen_now, create):
    contact = ContactFactory()
    ActivityFactory(contact=contact, kind="email_opened", occurred_at=frozen_now.now)
    segment = create(NO_OPEN_IN_90_DAYS, key="inactive")
    assert segment.member_count == 0

    frozen_now.move(days=91)
    outcome = evaluate_segments_task()

    assert outcome == "queued 1 segment evaluations"
    assert SegmentMembership.objects.get(segment=segment, contact=contact).exited_at is None
    segment.refresh_from_db()
    assert segment.member_count == 1
    assert segment.last_evaluated_at == frozen_now.now
    assert segment.count_snapshots.count() == 2


def test_contacts_changed_without_an_activity_are_refreshed_by_the_minute_sweep(create):
    contact = ContactFactory(country="DE")
    segment = create(group(cond("country", "in", ["AT"])), key="austria")

    contact_update(contact=contact, country="AT")
    refresh_recently_changed_contacts_task()

    assert SegmentMembership.objects.filter(segment=segment, contact=contact).exists()


def test_evaluating_a_deleted_segment_is_a_no_op():
    assert evaluate_segment_task(123456) == "segment deleted"


def test_refreshing_costs_the_same_queries_for_more_contacts(create):
    create(PRICING_TWICE)
    create(group(cond("lifecycle_stage", "in", ["new_lead"])), key="leads")

    def queries_for(count: int) -> int:
        ids = [ContactFactory().pk for _ in range(count)]
        with CaptureQueriesContext(connection) as captured:
            segment_memberships_refresh(contact_ids=ids)
        return len(captured)

    assert queries_for(3) == queries_for(30)


def test_a_full_evaluation_reports_its_outcome(create):
    ContactFactory(lifecycle_stage_id="new_lead")
    segment = create(group(cond("lifecycle_stage", "in", ["new_lead"])), key="leads")
    ContactFactory(lifecycle_stage_id="new_lead")

    evaluation = segment_evaluate(segment=segment)

    assert (evaluation.member_count, evaluation.entered, evaluation.exited) == (2, 1, 0)


def test_a_segment_naming_a_deleted_topic_is_reported_not_retried():
    topic = ConsentTopicFactory(key="gone")
    segment = SegmentFactory(definition=group(cond("consent", "granted", topic="gone")))
    topic.delete()

    assert evaluate_segment_task(segment.pk) == "cannot evaluate: There is no consent topic 'gone'."


def test_count_history_keeps_changes_and_a_daily_point(frozen_now, create):
    ContactFactory(lifecycle_stage_id="new_lead")
    segment = create(group(cond("lifecycle_stage", "in", ["new_lead"])), key="leads")

    segment_evaluate(segment=segment)  # nothing changed since the first evaluation
    frozen_now.move(hours=25)
    segment_evaluate(segment=segment)  # nothing changed, but a day has passed
    frozen_now.move(minutes=15)
    ContactFactory(lifecycle_stage_id="new_lead")
    segment_evaluate(segment=segment)  # someone entered

    history = list(
        segment.count_snapshots.order_by("counted_at").values_list("member_count", "entered")
    )
    assert history == [(1, 1), (1, 0), (2, 1)]


# --- Full evaluation: set-based, per range of contact ids -----------------------------------


def test_a_full_evaluation_records_exits_and_reentries_like_a_refresh(create):
    leaving = ContactFactory(lifecycle_stage_id="engaged_lead")
    returning = ContactFactory(lifecycle_stage_id="engaged_lead")
    segment = create(group(cond("lifecycle_stage", "in", ["engaged_lead"])))
    Contact.objects.filter(pk=returning.pk).update(lifecycle_stage_id="opportunity")
    segment_evaluate(segment=segment)  # returning leaves (entry 1 ends)
    Contact.objects.filter(pk=returning.pk).update(lifecycle_stage_id="engaged_lead")
    Contact.objects.filter(pk=leaving.pk).update(lifecycle_stage_id="opportunity")

    evaluation = segment_evaluate(segment=segment)

    assert (evaluation.entered, evaluation.exited, evaluation.member_count) == (1, 1, 1)
    entries = _recorded(returning, "segment_entered", segment)
    assert [activity.properties["entry"] for activity in entries] == [2, 1]
    assert entries[0].idempotency_key == f"segment:{segment.pk}:{returning.pk}:entered:2"
    assert entries[0].properties == {"segment": segment.key, "segment_name": "Pricing", "entry": 2}
    [exit_] = _recorded(leaving, "segment_exited", segment)
    assert exit_.properties["entry"] == 1
    assert exit_.idempotency_key == f"segment:{segment.pk}:{leaving.pk}:exited:1"
    assert SegmentMembership.objects.get(segment=segment, contact=returning).entry_count == 2


def test_a_full_evaluation_in_many_ranges_matches_one_range(create, monkeypatch):
    people = [ContactFactory(lifecycle_stage_id="new_lead") for _ in range(7)]
    Contact.objects.filter(pk__in=[people[1].pk, people[4].pk]).update(lifecycle_stage_id="churned")
    monkeypatch.setattr(segments_service, "EVALUATE_RANGE_SIZE", 2)

    segment = create(group(cond("lifecycle_stage", "in", ["new_lead"])), key="leads")

    members = set(segment_members(segment=segment).values_list("pk", flat=True))
    assert members == {person.pk for index, person in enumerate(people) if index not in (1, 4)}
    assert segment.member_count == 5
    assert Activity.objects.filter(kind="segment_entered").count() == 5


def test_a_full_evaluation_run_twice_records_nothing_twice(create):
    ContactFactory.create_batch(3, lifecycle_stage_id="new_lead")
    segment = create(group(cond("lifecycle_stage", "in", ["new_lead"])), key="leads")

    again = segment_evaluate(segment=segment)

    assert (again.entered, again.exited, again.member_count) == (0, 0, 3)
    assert Activity.objects.filter(kind="segment_entered").count() == 3


def test_a_full_evaluation_signals_each_range_once_with_every_new_activity(create):
    ContactFactory.create_batch(4, lifecycle_stage_id="new_lead")
    batches = []

    def listen(sender, activities, **kwargs):
        batches.append(activities)

    activities_recorded.connect(listen, dispatch_uid="test-listen")
    try:
        create(group(cond("lifecycle_stage", "in", ["new_lead"])), key="leads")
    finally:
        activities_recorded.disconnect(dispatch_uid="test-listen")

    [batch] = batches
    stored = {activity.pk: activity for activity in Activity.objects.filter(kind="segment_entered")}
    assert sorted(activity.pk for activity in batch) == sorted(stored)
    for activity in batch:
        assert activity.contact_id == stored[activity.pk].contact_id
        assert activity.properties == stored[activity.pk].properties
        assert activity.properties["initial"] is True


def test_a_full_evaluation_costs_the_same_queries_for_more_members(create):
    def queries_for(count: int) -> int:
        ContactFactory.create_batch(count, lifecycle_stage_id="new_lead")
        segment = SegmentFactory(
            key=f"leads-{count}", definition=group(cond("lifecycle_stage", "in", ["new_lead"]))
        )
        with CaptureQueriesContext(connection) as captured:
            segment_evaluate(segment=segment)
        return len(captured)

    assert queries_for(3) == queries_for(30)


def test_an_evaluation_out_of_time_stops_between_ranges_and_resumes(create, monkeypatch):
    people = ContactFactory.create_batch(5, lifecycle_stage_id="new_lead")
    monkeypatch.setattr(segments_service, "EVALUATE_RANGE_SIZE", 2)
    segment = SegmentFactory(
        key="leads", definition=group(cond("lifecycle_stage", "in", ["new_lead"]))
    )

    first = segment_evaluate(segment=segment, time_budget=datetime.timedelta(0))

    assert first.resume_at == people[0].pk + 2  # one range done, then out of time
    assert segment_members(segment=segment).count() == 2
    segment.refresh_from_db()
    assert segment.last_evaluated_at is None  # not counted until the end
    rest = segment_evaluate(
        segment=segment, resume_at=first.resume_at, carried=MembershipChanges(first.entered, 0)
    )
    assert rest.resume_at is None
    assert (rest.member_count, rest.entered) == (5, 5)
    assert Activity.objects.filter(kind="segment_entered", properties__initial=True).count() == 5


def test_the_evaluation_task_queues_its_own_continuation(monkeypatch, settings):
    people = ContactFactory.create_batch(5, lifecycle_stage_id="new_lead")
    monkeypatch.setattr(segments_service, "EVALUATE_RANGE_SIZE", 2)
    monkeypatch.setitem(settings.Q_CLUSTER, "timeout", 0)
    segment = SegmentFactory(
        key="leads", definition=group(cond("lifecycle_stage", "in", ["new_lead"]))
    )

    outcome = evaluate_segment_task(segment.pk)  # django-q2 runs the continuations at once

    assert outcome == f"continues from contact {people[0].pk + 2}"
    segment.refresh_from_db()
    assert segment.member_count == 5
    [snapshot] = SegmentCountSnapshot.objects.filter(segment=segment)
    assert (snapshot.member_count, snapshot.entered) == (5, 5)
