"""The engine end to end: triggers, every step type, branches, goals and exits (frozen clock)."""

import pytest
from django.core import mail

from crm.models import Activity, Task
from crm.services import activity_record, lifecycle_stage_change
from sequences.models import Enrollment, OutboundMessage, Step
from sequences.services import sequence_activate, sequence_pause, sequence_resume
from tests.factories import ContactFactory, UserFactory
from tests.sequences.conftest import build_sequence, email_step, run, sent_to, step

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """Record an activity the way the API does, running on-commit work (the enqueued task)."""

    def record_activity(contact, kind, **properties):
        with django_capture_on_commit_callbacks(execute=True):
            return activity_record(kind=kind, source="test", contact=contact, properties=properties)

    return record_activity


def enrollment_of(contact) -> Enrollment:
    return Enrollment.objects.filter(contact=contact).latest("enrolled_at")


def history(enrollment) -> list[tuple[str, str]]:
    return [(event.kind, event.reason) for event in enrollment.events.order_by("pk")]


def test_trigger_enrolls_and_sends_the_first_email_at_once(clock, consenting_contact, record):
    build_sequence([email_step("hello")])

    record(consenting_contact, "form_submitted", form="seo-guide")

    [message] = sent_to(consenting_contact.email)
    assert message.subject == "A next step for you"
    assert "Hi Ada" in message.alternatives[0][0]
    ledger = OutboundMessage.objects.get()
    assert ledger.state == "sent" and ledger.esp_message_id
    assert message.metadata == {
        "message_uuid": str(ledger.uuid),
        "enrollment_id": str(ledger.enrollment_id),
        "step": "hello",
    }
    assert Activity.objects.filter(contact=consenting_contact, kind="email_sent").count() == 1
    assert enrollment_of(consenting_contact).state == "completed"


def test_marketing_email_carries_one_click_unsubscribe_headers(clock, consenting_contact, record):
    build_sequence([email_step("hello")])

    record(consenting_contact, "form_submitted")

    headers = mail.outbox[0].extra_headers
    assert headers["List-Unsubscribe"].startswith("<https://nextstep.test/unsubscribe/")
    assert headers["List-Unsubscribe"].count("https://") == 1
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Id"] == "Newsletter <newsletter.nextstep.test>"
    assert consenting_contact.email not in str(mail.outbox[0].metadata)


def test_trigger_property_conditions_must_hold(clock, consenting_contact, record):
    sequence = build_sequence([email_step("hello")], trigger=None, activate=False)
    sequence.triggers.create(
        activity_kind="cart_abandoned", conditions=[{"field": "value", "op": "gte", "value": 20}]
    )
    sequence_activate(sequence=sequence)

    record(consenting_contact, "cart_abandoned", value=10)
    record(consenting_contact, "cart_abandoned", value=25)

    assert Enrollment.objects.filter(contact=consenting_contact).count() == 1
    assert enrollment_of(consenting_contact).trigger_properties["value"] == 25


def test_wait_duration_sends_the_next_email_only_when_due(clock, consenting_contact, record):
    build_sequence(
        [email_step("one"), step("wait", "wait_duration", duration={"days": 2}), email_step("two")]
    )
    record(consenting_contact, "form_submitted")

    clock.advance(days=1)
    run(clock)
    assert len(mail.outbox) == 1

    clock.advance(days=1)
    run(clock)
    assert len(mail.outbox) == 2


def test_buying_during_the_abandoned_cart_wait_stops_further_cart_emails(
    clock, consenting_contact, record
):
    build_sequence(
        [
            email_step("cart-1"),
            step("wait", "wait_duration", duration={"hours": 20}),
            email_step("cart-2"),
        ],
        trigger="cart_abandoned",
        goal_conditions=[{"activity": "order_placed"}],
    )
    record(consenting_contact, "cart_abandoned", value=50)
    clock.advance(hours=2)

    record(consenting_contact, "order_placed", total=50)
    clock.advance(days=2)
    run(clock)

    assert len(sent_to(consenting_contact.email)) == 1
    enrollment = enrollment_of(consenting_contact)
    assert (enrollment.state, enrollment.reason) == ("converted", "goal:order_placed")


def test_a_contact_handed_to_sales_leaves_nurture_at_once(clock, consenting_contact, record):
    build_sequence(
        [step("wait", "wait_duration", duration={"days": 3}), email_step("nurture")],
        exit_conditions=[{"activity": "handed_off"}],
    )
    record(consenting_contact, "form_submitted")

    record(consenting_contact, "handed_off", handoff_id=1)

    enrollment = enrollment_of(consenting_contact)
    assert (enrollment.state, enrollment.reason) == ("exited", "exit:handed_off")
    clock.advance(days=5)
    run(clock)
    assert mail.outbox == []


def test_complaint_ends_every_enrollment(clock, consenting_contact, record):
    build_sequence([step("wait", "wait_duration", duration={"days": 3}), email_step("later")])
    record(consenting_contact, "form_submitted")

    record(consenting_contact, "email_complained")

    assert enrollment_of(consenting_contact).reason == "email_complained"


@pytest.mark.parametrize(
    ("event_after_days", "expected_template"), [(1, "yes-email"), (None, "timeout-email")]
)
def test_wait_for_event_follows_yes_or_timed_out_branch(
    clock, consenting_contact, record, event_after_days, expected_template
):
    build_sequence(
        [
            step(
                "milestone",
                "wait_for_event",
                event={"activity": "onboarding_milestone_reached"},
                timeout={"days": 7},
                yes_step="yes",
                timeout_step="timeout",
            ),
            email_step("yes"),
            step("stop", "end"),
            email_step("timeout"),
        ],
        key="onboard",
    )
    record(consenting_contact, "form_submitted")
    assert enrollment_of(consenting_contact).state == "waiting"

    if event_after_days:
        clock.advance(days=event_after_days)
        record(consenting_contact, "onboarding_milestone_reached")
    clock.advance(days=8)
    run(clock)

    [message] = mail.outbox
    assert OutboundMessage.objects.get().step == expected_template.split("-")[0]
    assert message.to == [consenting_contact.email]
    assert enrollment_of(consenting_contact).state == "completed"


@pytest.mark.parametrize(("stage", "branch"), [("engaged_lead", "yes"), ("new_lead", "no")])
def test_branch_if_on_contact_data(clock, newsletter, record, stage, branch):
    contact = ContactFactory(lifecycle_stage_id=stage)
    from tests.factories import ConsentEntryFactory

    ConsentEntryFactory(contact=contact, topic=newsletter)
    build_sequence(
        [
            step(
                "check",
                "branch_if",
                condition={"contact": "lifecycle_stage", "op": "eq", "value": "engaged_lead"},
                yes_step="yes",
                no_step="no",
            ),
            email_step("yes"),
            step("stop", "end"),
            email_step("no"),
        ]
    )

    record(contact, "form_submitted")

    assert OutboundMessage.objects.get().step == branch


def test_branch_if_on_behaviour_since_enrollment(clock, consenting_contact, record):
    build_sequence(
        [
            email_step("first"),
            step("wait", "wait_duration", duration={"days": 2}),
            step(
                "clicked",
                "branch_if",
                condition={"activity": "email_clicked"},
                yes_step="thanks",
                no_step="nudge",
            ),
            email_step("thanks"),
            step("stop", "end"),
            email_step("nudge"),
        ]
    )
    record(consenting_contact, "form_submitted")

    clock.advance(days=1)
    record(consenting_contact, "email_clicked", url="https://www.example.com/next")
    clock.advance(days=1)
    run(clock)

    assert sorted(OutboundMessage.objects.values_list("step", flat=True)) == ["first", "thanks"]


def test_notify_owner_create_task_and_update_contact_steps(clock, consenting_contact, record):
    owner = UserFactory()
    consenting_contact.owner = owner
    consenting_contact.save()
    build_sequence(
        [
            step("tell", "notify_owner", title="Hot lead"),
            step(
                "task", "create_task", title="Call them", assignee="sequence_owner", due_in_days=2
            ),
            step(
                "update",
                "update_contact",
                lifecycle_stage="engaged_lead",
                add_tags=["nurtured"],
                properties={"nurtured": True},
            ),
            step("stop", "end"),
        ]
    )

    record(consenting_contact, "form_submitted")

    tasks = {task.title: task for task in Task.objects.all()}
    assert tasks["Hot lead"].owner == owner
    assert tasks["Call them"].owner == enrollment_of(consenting_contact).sequence.owner
    consenting_contact.refresh_from_db()
    assert consenting_contact.lifecycle_stage_id == "engaged_lead"
    assert list(consenting_contact.tags.values_list("name", flat=True)) == ["nurtured"]
    assert consenting_contact.properties["nurtured"] is True
    enrollment = enrollment_of(consenting_contact)
    assert (enrollment.state, enrollment.reason, enrollment.needs_review) == (
        "completed",
        "end_step",
        True,
    )


def test_wait_until_time_waits_for_the_next_local_morning(clock, consenting_contact, record):
    build_sequence([step("morning", "wait_until_time", time="09:00"), email_step("hello")])

    record(consenting_contact, "form_submitted")

    # 11:00 in Berlin now, so 09:00 Berlin tomorrow, which is 08:00 UTC in March.
    assert enrollment_of(consenting_contact).due_at.isoformat() == "2026-03-11T08:00:00+00:00"


def test_wait_until_date_property(clock, consenting_contact, record):
    consenting_contact.properties = {"renewal_date": "2026-05-01"}
    consenting_contact.save()
    build_sequence(
        [
            step(
                "before", "wait_until_date", property="renewal_date", offset_days=-30, time="10:00"
            ),
            email_step("renewal"),
        ]
    )

    record(consenting_contact, "form_submitted")

    assert enrollment_of(consenting_contact).due_at.isoformat() == "2026-04-01T08:00:00+00:00"


def test_wait_until_date_without_the_property_exits_with_reason(clock, consenting_contact, record):
    build_sequence([step("before", "wait_until_date", property="renewal_date"), email_step("x")])

    record(consenting_contact, "form_submitted")

    assert enrollment_of(consenting_contact).reason == "missing_data:renewal_date"


def test_lifecycle_stage_trigger_and_audience_left_exit(clock, consenting_contact, record):
    build_sequence(
        [step("wait", "wait_duration", duration={"days": 1}), email_step("hello")],
        trigger=None,
        activate=False,
        key="stage-seq",
        audience_conditions=[{"contact": "lifecycle_stage", "op": "in", "value": ["engaged_lead"]}],
    )
    from sequences.models import Sequence

    sequence = Sequence.objects.get(key="stage-seq")
    sequence.triggers.create(type="lifecycle_stage", lifecycle_stage="engaged_lead")
    sequence_activate(sequence=sequence)

    lifecycle_stage_change(contact=consenting_contact, stage="engaged_lead", source="test")
    assert enrollment_of(consenting_contact).state == "active"
    lifecycle_stage_change(contact=consenting_contact, stage="opportunity", source="test")

    enrollment = enrollment_of(consenting_contact)
    assert (enrollment.state, enrollment.reason) == ("exited", "audience_left")


def test_never_reenroll_policy(clock, consenting_contact, record):
    build_sequence([email_step("hello")], reenrollment="never")

    record(consenting_contact, "form_submitted")
    record(consenting_contact, "form_submitted")

    assert Enrollment.objects.count() == 1


def test_after_exit_policy_waits_for_the_gap(clock, consenting_contact, record):
    build_sequence([email_step("hello")], reenrollment="after_exit", reenrollment_min_gap_days=7)
    record(consenting_contact, "form_submitted")

    record(consenting_contact, "form_submitted")
    clock.advance(days=8)
    record(consenting_contact, "form_submitted")

    assert Enrollment.objects.count() == 2


def test_pause_holds_and_resume_continues_without_sending_twice(clock, consenting_contact, record):
    sequence = build_sequence(
        [email_step("one"), step("wait", "wait_duration", duration={"days": 1}), email_step("two")]
    )
    record(consenting_contact, "form_submitted")

    sequence_pause(sequence=sequence)
    clock.advance(days=3)
    run(clock)
    assert len(mail.outbox) == 1

    sequence_resume(sequence=sequence)
    run(clock)
    run(clock)
    assert [m.step for m in OutboundMessage.objects.order_by("pk")] == ["one", "two"]
    assert len(mail.outbox) == 2


def test_editing_an_active_sequence_keeps_enrollments_on_their_version(
    clock, consenting_contact, record
):
    sequence = build_sequence(
        [email_step("one"), step("wait", "wait_duration", duration={"days": 1}), email_step("two")]
    )
    record(consenting_contact, "form_submitted")

    Step.objects.filter(sequence=sequence, key="two").delete()
    sequence_activate(sequence=sequence)
    clock.advance(days=2)
    run(clock)

    sequence.refresh_from_db()
    assert sequence.current_version.number == 2
    assert enrollment_of(consenting_contact).version.number == 1
    assert len(mail.outbox) == 2


def test_maximum_duration_ends_the_enrollment(clock, consenting_contact, record):
    build_sequence(
        [step("wait", "wait_duration", duration={"days": 30}), email_step("late")],
        max_duration_days=5,
    )
    record(consenting_contact, "form_submitted")

    clock.advance(days=6)
    run(clock)

    assert enrollment_of(consenting_contact).reason == "max_duration"
    assert mail.outbox == []


def test_receiver_queries_are_bounded_per_batch(clock, django_assert_max_num_queries):
    from crm.services import ActivityInput, activity_record_batch

    build_sequence([email_step("hello")])
    contacts = ContactFactory.create_batch(20)
    items = [ActivityInput(kind="form_submitted", source="t", contact_id=c.pk) for c in contacts]

    with django_assert_max_num_queries(40):
        activity_record_batch(items=items)

    assert Enrollment.objects.count() == 20
