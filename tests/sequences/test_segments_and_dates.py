"""Segments as audience and trigger, and date-property triggers (frozen clock)."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from crm.models import SegmentMembership
from crm.schedules import registered_schedules
from crm.services import activity_record
from crm.services.segments import segment_evaluate
from sequences.models import Enrollment, Trigger
from sequences.services import date_triggers_enroll, enrollment_create, sequence_activate
from sequences.tasks import enroll_date_triggers_task
from tests.factories import ConsentEntryFactory, ContactFactory, SegmentFactory
from tests.sequences.conftest import build_sequence, email_step, run, sent_to, step

pytestmark = pytest.mark.django_db

NEW_LEADS = {
    "match": "all",
    "conditions": [{"field": "lifecycle_stage", "operator": "in", "value": ["new_lead"]}],
}


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    def record_activity(contact, kind, **properties):
        with django_capture_on_commit_callbacks(execute=True):
            return activity_record(kind=kind, source="test", contact=contact, properties=properties)

    return record_activity


def segment_sequence(segment, *, include_existing_members=False, **fields):
    sequence = build_sequence([email_step("hello")], trigger=None, activate=False, **fields)
    sequence.triggers.create(
        type=Trigger.Type.SEGMENT_ENTERED,
        segment=segment,
        include_existing_members=include_existing_members,
    )
    sequence_activate(sequence=sequence)
    return sequence


def consenting(newsletter, clock, **fields):
    contact = ContactFactory(first_name="Ada", **fields)
    ConsentEntryFactory(
        contact=contact, topic=newsletter, occurred_at=clock.now - datetime.timedelta(days=1)
    )
    return contact


# --- Entering a segment ---------------------------------------------------------------------


def test_entering_the_segment_enrolls_and_sends(clock, consenting_contact, record):
    segment = SegmentFactory(key="trial-users")
    segment_sequence(segment)

    record(consenting_contact, "segment_entered", segment="trial-users", entry=1)
    record(consenting_contact, "segment_entered", segment="other-segment", entry=1)

    assert Enrollment.objects.filter(contact=consenting_contact).count() == 1
    assert len(sent_to(consenting_contact.email)) == 1


@pytest.mark.parametrize("include_existing", [False, True])
def test_first_evaluation_members_enroll_only_when_the_trigger_includes_them(
    clock, newsletter, django_capture_on_commit_callbacks, include_existing
):
    contact = consenting(newsletter, clock)
    segment = SegmentFactory(key="new-leads", definition=NEW_LEADS)
    segment_sequence(segment, include_existing_members=include_existing)

    with django_capture_on_commit_callbacks(execute=True):
        segment_evaluate(segment=segment)

    assert Enrollment.objects.filter(contact=contact).exists() is include_existing


# --- A segment as the audience --------------------------------------------------------------


def test_only_members_of_the_audience_segment_enter(clock, newsletter, record):
    segment = SegmentFactory(key="customers")
    build_sequence([email_step("hello")], audience_segment=segment)
    member, outsider = consenting(newsletter, clock), consenting(newsletter, clock)
    SegmentMembership.objects.create(segment=segment, contact=member, entered_at=clock.now)

    record(member, "form_submitted")
    record(outsider, "form_submitted")

    assert Enrollment.objects.filter(contact=member).exists()
    assert not Enrollment.objects.filter(contact=outsider).exists()


def test_manual_enrollment_refuses_a_contact_outside_the_audience_segment(clock, newsletter):
    sequence = build_sequence([email_step("hello")], audience_segment=SegmentFactory())

    with pytest.raises(ValidationError):
        enrollment_create(contact=consenting(newsletter, clock), sequence=sequence)


def test_leaving_the_audience_segment_exits_at_once(clock, newsletter, record):
    segment = SegmentFactory(key="customers")
    build_sequence(
        [step("wait", "wait_duration", duration={"days": 1}), email_step("hello")],
        audience_segment=segment,
    )
    contact = consenting(newsletter, clock)
    SegmentMembership.objects.create(segment=segment, contact=contact, entered_at=clock.now)
    record(contact, "form_submitted")

    record(contact, "segment_exited", segment="customers", entry=1)

    enrollment = Enrollment.objects.get(contact=contact)
    assert (enrollment.state, enrollment.reason) == ("exited", "audience_left")


def test_a_contact_no_longer_in_the_audience_segment_gets_no_email(clock, newsletter, record):
    segment = SegmentFactory(key="customers")
    build_sequence(
        [step("wait", "wait_duration", duration={"days": 1}), email_step("hello")],
        audience_segment=segment,
    )
    contact = consenting(newsletter, clock)
    SegmentMembership.objects.create(segment=segment, contact=contact, entered_at=clock.now)
    record(contact, "form_submitted")
    SegmentMembership.objects.filter(contact=contact).update(exited_at=clock.now)

    clock.advance(days=1, minutes=1)
    run(clock)

    enrollment = Enrollment.objects.get(contact=contact)
    assert (enrollment.state, enrollment.reason) == ("exited", "audience_left")
    assert sent_to(contact.email) == []


# --- Date-property triggers -----------------------------------------------------------------


def date_sequence(*, date_property="renewal_date", days_before=0, is_yearly=False, **fields):
    sequence = build_sequence(
        [step("wait", "wait_duration", duration={"days": 1}), email_step("hello")],
        trigger=None,
        activate=False,
        **fields,
    )
    sequence.triggers.create(
        type=Trigger.Type.DATE_PROPERTY,
        date_property=date_property,
        days_before=days_before,
        is_yearly=is_yearly,
    )
    sequence_activate(sequence=sequence)
    return sequence


def days_from_start(clock, days: int) -> str:
    return (clock.now.date() + datetime.timedelta(days=days)).isoformat()


def test_contacts_whose_renewal_is_thirty_days_away_enroll(clock, newsletter):
    date_sequence(days_before=30)
    due = consenting(newsletter, clock, properties={"renewal_date": days_from_start(clock, 30)})
    others = [
        consenting(newsletter, clock, properties={"renewal_date": days_from_start(clock, 29)}),
        consenting(newsletter, clock, properties={"renewal_date": "soon"}),
        consenting(newsletter, clock, properties={}),
    ]

    entered = date_triggers_enroll(now=clock.now)

    assert entered == 1
    enrollment = Enrollment.objects.get()
    assert enrollment.contact == due
    assert enrollment.trigger_on.isoformat() == days_from_start(clock, 30)
    assert not Enrollment.objects.filter(contact__in=others).exists()


def test_a_second_run_the_same_day_enrolls_nobody_again(clock, newsletter):
    date_sequence(reenrollment="always")
    contact = consenting(newsletter, clock, properties={"renewal_date": days_from_start(clock, 0)})
    date_triggers_enroll(now=clock.now)
    Enrollment.objects.update(state="completed", ended_at=clock.now)

    again = date_triggers_enroll(now=clock.advance(hours=2))

    assert again == 0
    assert Enrollment.objects.filter(contact=contact).count() == 1


def test_birthdays_enroll_once_a_year(clock, newsletter):
    date_sequence(date_property="birthday", is_yearly=True, reenrollment="after_exit")
    contact = consenting(newsletter, clock, properties={"birthday": "1990-03-10"})
    ContactFactory(properties={"birthday": "1990-03-11"})

    date_triggers_enroll(now=clock.now)
    Enrollment.objects.update(state="completed", ended_at=clock.now)
    date_triggers_enroll(now=clock.advance(days=365))

    dates = Enrollment.objects.filter(contact=contact).values_list("trigger_on", flat=True)
    assert sorted(day.isoformat() for day in dates) == ["2026-03-10", "2027-03-10"]
    assert Enrollment.objects.count() == 2


def test_date_trigger_respects_the_never_reenroll_policy(clock, newsletter):
    date_sequence(date_property="birthday", is_yearly=True, reenrollment="never")
    consenting(newsletter, clock, properties={"birthday": "1990-03-10"})

    date_triggers_enroll(now=clock.now)
    Enrollment.objects.update(state="completed", ended_at=clock.now)
    date_triggers_enroll(now=clock.advance(days=365))

    assert Enrollment.objects.count() == 1


def test_date_task_enrolls_and_the_engine_runs_the_steps(
    clock, newsletter, django_capture_on_commit_callbacks
):
    date_sequence(days_before=7)
    contact = consenting(newsletter, clock, properties={"renewal_date": days_from_start(clock, 7)})

    with django_capture_on_commit_callbacks(execute=True):
        outcome = enroll_date_triggers_task()
    clock.advance(days=1, minutes=1)
    run(clock)

    assert outcome == "enrolled 1"
    assert len(sent_to(contact.email)) == 1


def test_date_trigger_task_is_scheduled_daily():
    schedules = {spec.name: spec for spec in registered_schedules()}

    spec = schedules["sequences: enroll date triggers"]

    assert spec.func == "sequences.tasks.enroll_date_triggers_task"
    assert spec.cron == "0 6 * * *"
