"""The sequence builder: the flow, per-type forms, live counts, errors per step, YAML round trip."""

import datetime
import json

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from crm.config_io import config_import
from crm.models import Segment
from crm.services import activity_record
from sequences.builder import sequence_flow, step_counts
from sequences.builder_conditions import (
    ACTIVITIES,
    BRANCH,
    CONTACTS,
    EVENT,
    NotRepresentable,
    WidgetConditionError,
    conditions_to_widget,
    widget_to_conditions,
)
from sequences.config_sections import sequence_item, sequences_export_yaml
from sequences.models import (
    Enrollment,
    EnrollmentEvent,
    OutboundMessage,
    Sequence,
    Step,
    Trigger,
)
from sequences.services.steps import wait_end
from tests.factories import ContactFactory, EmailTemplateFactory
from tests.sequences.conftest import build_sequence, email_step, run, step

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


def builder(sequence: Sequence, **query) -> str:
    url = reverse("admin:sequences_sequence_builder", args=[sequence.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def widget(*conditions, match="all") -> str:
    return json.dumps({"match": match, "conditions": list(conditions)})


def clicked(kind="email_clicked", where=()):
    return {
        "field": "activity",
        "operator": "at_least",
        "kind": kind,
        "count": 1,
        "days": None,
        "where": list(where),
    }


def ALL_OF(*conditions):
    return {"match": "all", "conditions": list(conditions)}


def ANY_OF(*conditions):
    return {"match": "any", "conditions": list(conditions)}


def KIND(kind: str) -> dict:
    return {"field": "kind", "operator": "in", "value": [kind]}


def draft(**fields) -> Sequence:
    return build_sequence([], trigger=None, activate=False, **fields)


# --- The flow -------------------------------------------------------------------------------


def test_the_flow_shows_triggers_steps_branches_and_goals_in_words(marketer_client):
    sequence = build_sequence(
        [
            step("wait", "wait_duration", duration={"business_days": 2}),
            email_step("hello"),
            step(
                "clicked",
                "branch_if",
                condition={"activity": "email_clicked"},
                yes_step="done",
                no_step="nudge",
            ),
            email_step("nudge"),
            step("done", "end"),
        ],
        activate=False,
        goal_conditions=[{"activity": "order_placed", "where": []}],
    )

    page = marketer_client.get(builder(sequence))

    text = page.content.decode()
    assert page.status_code == 200
    assert "When form_submitted is recorded" in text
    assert "Wait 2 business days" in text
    assert "If they did email_clicked since entering" in text
    assert "yes → 5. done" in text
    assert "no → 4. nudge" in text
    assert "Also reached from step 3 (yes)" in text
    assert "order_placed" in text
    assert "TriggerInline" not in text and "triggers-TOTAL_FORMS" not in text


def test_the_change_page_has_no_json_inlines_and_links_the_builder(marketer_client):
    sequence = build_sequence([email_step("hello")], activate=False)

    page = marketer_client.get(reverse("admin:sequences_sequence_change", args=[sequence.pk]))

    text = page.content.decode()
    assert builder(sequence) in text
    assert "triggers-TOTAL_FORMS" not in text and "steps-TOTAL_FORMS" not in text
    assert 'name="goal_conditions"' not in text and 'name="audience_conditions"' not in text
    assert "Send “" in text  # the flow, read-only


def test_adding_a_sequence_leads_to_the_builder(marketer_client, marketer, newsletter):
    response = marketer_client.post(
        reverse("admin:sequences_sequence_add"),
        {
            "name": "Welcome",
            "key": "welcome",
            "owner": marketer.pk,
            "topic": newsletter.pk,
            "priority": 0,
            "reenrollment": "never",
            "reenrollment_min_gap_days": 0,
            "on_send_failure": "continue",
            "holdout_percent": 10,
        },
    )

    sequence = Sequence.objects.get(key="welcome")
    assert response.status_code == 302
    assert response["Location"] == builder(sequence)


# --- Per-type forms --------------------------------------------------------------------------


def test_a_wait_is_entered_as_an_amount_and_unit(marketer_client):
    sequence = draft()

    response = marketer_client.post(
        builder(sequence, edit="step", type="wait_duration"),
        {"key": "pause", "amount": "3", "unit": "business_days"},
    )

    assert response.status_code == 302
    saved = sequence.steps.get()
    assert (saved.key, saved.type, saved.config) == (
        "pause",
        "wait_duration",
        {"duration": {"business_days": 3}},
    )


def test_an_existing_mixed_duration_shows_as_one_unit(marketer_client):
    sequence = build_sequence(
        [step("wait", "wait_duration", duration={"days": 1, "hours": 2})], activate=False
    )
    pk = sequence.steps.get().pk

    page = marketer_client.get(builder(sequence, edit="step", pk=pk))

    form = page.context_data["form"]
    assert (form.initial["amount"], form.initial["unit"]) == (26, "hours")


def test_waiting_until_a_date_property(marketer_client):
    sequence = draft()

    marketer_client.post(
        builder(sequence, edit="step", type="wait_until_date"),
        {
            "key": "before-renewal",
            "property": "renewal_date",
            "offset_days": "-30",
            "time": "10:00",
        },
    )

    assert sequence.steps.get().config == {
        "property": "renewal_date",
        "offset_days": -30,
        "time": "10:00",
    }


def test_an_email_step_picks_its_template_and_shows_a_preview(marketer_client):
    sequence = draft()
    template = EmailTemplateFactory(key="hello", subject="Hello there")
    variant = EmailTemplateFactory(key="hello-b")
    ContactFactory(first_name="Ada")

    marketer_client.post(
        builder(sequence, edit="step", type="send_email"),
        {
            "key": "hello",
            "template": template.pk,
            "on_frequency_cap": "skip",
            "template_b": variant.pk,
            "split_a": "60",
            "winner_by": "click",
        },
    )
    saved = sequence.steps.get()
    page = marketer_client.get(builder(sequence, edit="step", pk=saved.pk))

    assert saved.template == template
    assert saved.config == {
        "on_frequency_cap": "skip",
        "variants": [
            {"key": "a", "template": "hello", "split": 60},
            {"key": "b", "template": "hello-b", "split": 40},
        ],
        "winner_by": "click",
    }
    text = page.content.decode()
    assert "admin-autocomplete" in text  # the template is picked by search
    assert 'class="seq-preview-subject">Hello there' in text
    assert "seq-preview-frame" in text


def test_a_new_step_goes_where_it_was_added(marketer_client):
    sequence = build_sequence([email_step("first"), email_step("last")], activate=False)

    marketer_client.post(
        builder(sequence, edit="step", type="wait_duration", after=0),
        {"key": "pause", "amount": "1", "unit": "days"},
    )

    assert list(sequence.steps.order_by("position").values_list("key", flat=True)) == [
        "first",
        "pause",
        "last",
    ]


def test_a_branch_uses_the_segment_widget_and_renaming_a_target_follows(marketer_client):
    sequence = build_sequence([email_step("hello"), email_step("nudge")], activate=False)
    condition = {"field": "lifecycle_stage", "operator": "in", "value": ["engaged_lead"]}

    marketer_client.post(
        builder(sequence, edit="step", type="branch_if", after=0),
        {"key": "engaged", "condition": widget(condition), "yes_step": "", "no_step": "nudge"},
    )
    nudge = sequence.steps.get(key="nudge")
    marketer_client.post(
        builder(sequence, edit="step", pk=nudge.pk),
        {"key": "reminder", "template": nudge.template_id, "on_frequency_cap": "defer"},
    )

    branch = sequence.steps.get(key="engaged")
    assert branch.config == {
        "condition": ALL_OF(
            {"field": "lifecycle_stage", "operator": "in", "value": ["engaged_lead"]}
        ),
        "no_step": "reminder",
    }


def test_wait_for_an_event_with_timeout(marketer_client):
    sequence = build_sequence([email_step("help"), step("done", "end")], activate=False)
    event = clicked("order_placed", [{"key": "value", "operator": "gte", "value": 20}])

    marketer_client.post(
        builder(sequence, edit="step", type="wait_for_event", after=-1),
        {
            "key": "await-order",
            "event": widget(event),
            "amount": "7",
            "unit": "days",
            "yes_step": "done",
            "timeout_step": "",
        },
    )

    assert sequence.steps.get(key="await-order").config == {
        "event": ALL_OF(
            KIND("order_placed"),
            {"field": "property", "key": "value", "operator": "gte", "value": 20},
        ),
        "timeout": {"days": 7},
        "yes_step": "done",
    }
    assert sequence.steps.get(key="await-order").position == 0


def test_goals_exits_and_audience_use_the_widget(marketer_client):
    sequence = draft()
    segment = Segment.objects.create(
        key="engaged", name="Engaged", definition={"match": "all", "conditions": []}
    )

    marketer_client.post(
        builder(sequence, edit="goals"),
        {"conditions": widget(clicked("order_placed"), clicked("demo_requested"), match="any")},
    )
    marketer_client.post(
        builder(sequence, edit="exits"), {"conditions": widget(clicked("handed_off"))}
    )
    marketer_client.post(
        builder(sequence, edit="audience"),
        {
            "audience_segment": segment.pk,
            "conditions": widget(
                {"field": "lead_score", "operator": "between", "value": [10, 50]},
                {"field": "tags", "operator": "has_all", "value": ["vip"]},
            ),
        },
    )

    sequence.refresh_from_db()
    assert sequence.goal_conditions == ANY_OF(
        ALL_OF(KIND("order_placed")), ALL_OF(KIND("demo_requested"))
    )
    assert sequence.exit_conditions == ANY_OF(ALL_OF(KIND("handed_off")))
    assert sequence.audience_segment == segment
    assert sequence.audience_conditions == ALL_OF(
        {"field": "lead_score", "operator": "gte", "value": 10},
        {"field": "lead_score", "operator": "lte", "value": 50},
        {"field": "tags", "operator": "has_any", "value": ["vip"]},
    )


def test_triggers_have_a_form_per_type(marketer_client):
    sequence = draft()
    segment = Segment.objects.create(
        key="trial", name="Trial", definition={"match": "all", "conditions": []}
    )

    page = marketer_client.get(builder(sequence, edit="trigger", type="date_property"))
    marketer_client.post(
        builder(sequence, edit="trigger", type="activity"),
        {
            "event": widget(
                clicked("cart_abandoned", [{"key": "value", "operator": "gte", "value": 20}])
            )
        },
    )
    marketer_client.post(
        builder(sequence, edit="trigger", type="segment_entered"),
        {"segment": segment.pk, "include_existing_members": "on"},
    )
    marketer_client.post(
        builder(sequence, edit="trigger", type="date_property"),
        {"date_property": "renewal_date", "days_before": "30"},
    )

    fields = set(page.context_data["form"].fields)
    assert fields == {"date_property", "days_before", "is_yearly"}  # not all ten columns
    triggers = list(sequence.triggers.order_by("pk"))
    assert [(t.type, t.activity_kind) for t in triggers][0] == ("activity", "cart_abandoned")
    assert triggers[0].conditions == ALL_OF(
        {"field": "property", "key": "value", "operator": "gte", "value": 20}
    )
    assert (triggers[1].segment, triggers[1].include_existing_members) == (segment, True)
    assert (triggers[2].date_property, triggers[2].days_before) == ("renewal_date", 30)


def test_conditions_the_widget_cannot_show_are_edited_as_json(marketer_client):
    sequence = draft(goal_conditions=[{"activity": "order_placed", "since": "entry"}])

    page = marketer_client.get(builder(sequence, edit="goals"))

    assert "segment-builder-tree" not in page.content.decode()
    assert "the builder cannot draw these conditions" in page.content.decode()


# --- Errors point at the step ----------------------------------------------------------------


def test_review_errors_show_on_their_step_in_words(marketer_client):
    sequence = build_sequence(
        [
            email_step("hello"),
            step(
                "branch", "branch_if", condition={"contact": "country", "op": "eq", "value": "DE"}
            ),
            step("pause", "wait_duration", duration={}),
        ],
        activate=False,
    )
    Step.objects.filter(key="branch").update(
        config={"condition": {"contact": "country", "value": "DE"}, "yes_step": "gone"}
    )

    flow = sequence_flow(sequence)
    page = marketer_client.get(builder(sequence)).content.decode()

    problems = {node.step.key: node.problems for node in flow.nodes}
    assert problems["hello"] == []
    assert problems["branch"] == ["yes_step 'gone' is no step."]
    assert problems["pause"] == ["duration needs days, hours, minutes and/or business_days"]
    assert 'id="step-branch"' in page and "seq-invalid" in page


def test_a_form_error_is_shown_in_words_and_nothing_is_saved(marketer_client):
    sequence = build_sequence([email_step("hello")], activate=False)

    page = marketer_client.post(
        builder(sequence, edit="step", type="wait_for_event"),
        {
            "key": "hello",
            "event": widget(clicked("order_placed"), clicked("signed_up")),
            "amount": "0",
            "unit": "days",
        },
    )

    errors = page.context_data["form"].errors
    assert errors["key"] == ["Another step is already called “hello”."]
    assert errors["event"] == ["Give exactly one condition."]
    assert "amount" in errors
    assert sequence.steps.count() == 1


# --- Live counts ----------------------------------------------------------------------------


def test_each_step_counts_waiting_sent_and_converted(django_assert_num_queries):
    sequence = build_sequence(
        [
            email_step("hello"),
            step(
                "await", "wait_for_event", event={"activity": "order_placed"}, timeout={"days": 3}
            ),
            email_step("nudge"),
            step("pause", "wait_duration", duration={"days": 2}),
            email_step("last"),
        ]
    )
    now = datetime.datetime(2026, 3, 10, tzinfo=datetime.UTC)

    def enroll(state, current, due_at=None):
        return Enrollment.objects.create(
            contact=ContactFactory(),
            sequence=sequence,
            version=sequence.current_version,
            state=state,
            current_step=current,
            due_at=due_at,
            enrolled_at=now,
        )

    enroll(Enrollment.State.ACTIVE, "last", due_at=timezone.now() + datetime.timedelta(days=1))
    enroll(Enrollment.State.ACTIVE, "last", due_at=timezone.now())  # due: about to get it

    first = enroll(Enrollment.State.ACTIVE, "hello")
    enroll(Enrollment.State.WAITING, "nudge")  # waiting for the order: counted on "await"
    enroll(Enrollment.State.ACTIVE, "nudge")
    converted = enroll(Enrollment.State.CONVERTED, "")
    for enrollment in (first, converted):
        OutboundMessage.objects.create(
            enrollment=enrollment,
            contact=enrollment.contact,
            step="hello",
            state=OutboundMessage.State.SENT,
            created_at=now,
        )
    for key in ("hello", "await"):
        EnrollmentEvent.objects.create(enrollment=converted, step=key, kind="x", occurred_at=now)

    steps = list(sequence.steps.all())
    with django_assert_num_queries(3):
        counts = step_counts(sequence, steps)

    assert (counts["hello"].waiting, counts["hello"].sent, counts["hello"].converted) == (1, 2, 1)
    assert (counts["await"].waiting, counts["await"].converted) == (1, 1)
    assert (counts["nudge"].waiting, counts["nudge"].sent) == (1, 0)
    assert (counts["pause"].waiting, counts["last"].waiting) == (1, 1)  # in the wait, due


def test_the_builder_page_has_a_query_budget(marketer_client, django_assert_max_num_queries):
    steps = [email_step(f"email-{n}") for n in range(4)]
    steps += [step(f"wait-{n}", "wait_duration", duration={"days": 1}) for n in range(4)]
    sequence = build_sequence(steps, activate=True)
    small = build_sequence([email_step("only")], activate=True)
    for target in (small, sequence):
        Enrollment.objects.create(
            contact=ContactFactory(),
            sequence=target,
            version=target.current_version,
            current_step=target.steps.first().key,
            enrolled_at=datetime.datetime(2026, 3, 10, tzinfo=datetime.UTC),
        )
    marketer_client.get(builder(small))  # warm caches (content types, sessions)

    # Session, user, permissions, the sequence, its steps and triggers (the flow and the
    # review), three counts: the same for one step or eight (14 when measured).
    with django_assert_max_num_queries(16):
        response = marketer_client.get(builder(sequence))

    assert response.status_code == 200


# --- Advanced view: YAML round trip ---------------------------------------------------------


def test_builder_save_yaml_import_gives_the_same_sequence(marketer_client, superuser):
    sequence = draft()
    template = EmailTemplateFactory(key="welcome-1")
    marketer_client.post(
        builder(sequence, edit="trigger", type="activity"), {"event": widget(clicked("signed_up"))}
    )
    marketer_client.post(
        builder(sequence, edit="step", type="wait_duration"),
        {"key": "pause", "amount": "2", "unit": "business_days"},
    )
    marketer_client.post(
        builder(sequence, edit="step", type="send_email"),
        {"key": "welcome", "template": template.pk, "on_frequency_cap": "defer"},
    )
    marketer_client.post(
        builder(sequence, edit="goals"),
        {"conditions": widget(clicked("order_placed"), match="any")},
    )
    before = sequence_item(Sequence.objects.get(pk=sequence.pk))

    yaml_text = marketer_client.get(builder(sequence, edit="advanced")).context_data["yaml"]
    assert yaml_text == sequences_export_yaml(sequences=[Sequence.objects.get(pk=sequence.pk)])
    Sequence.objects.filter(pk=sequence.pk).delete()
    config_import(yaml_text, user=superuser)

    # The import stores the one condition language's trees (the builder may still store
    # the older shapes): the same sequence, written the same way.
    imported = Sequence.objects.get(key=sequence.key)
    assert sequences_export_yaml(sequences=[imported]) == yaml_text
    assert before["steps"] == sequence_item(imported)["steps"]
    # …and the builder still draws the imported trees in the widget.
    for part in ("goals", "trigger"):
        query = {"edit": part}
        if part == "trigger":
            query["pk"] = imported.triggers.get().pk
        page = marketer_client.get(builder(imported, **query)).content.decode()
        assert "segment-builder-tree" in page
        assert "the builder cannot draw these conditions" not in page


def test_the_advanced_view_imports_edits_and_refuses_a_changed_key(marketer_client):
    sequence = build_sequence(
        [step("pause", "wait_duration", duration={"days": 1})], activate=False
    )
    text = marketer_client.get(builder(sequence, edit="advanced")).context_data["yaml"]

    marketer_client.post(
        builder(sequence, edit="advanced"), {"yaml": text.replace("days: 1", "days: 4")}
    )
    refused = marketer_client.post(
        builder(sequence, edit="advanced"),
        {"yaml": text.replace(f"key: {sequence.key}", "key: other-key")},
    )

    assert sequence.steps.get().config == {"duration": {"days": 4}}
    assert "must keep this sequence's key" in refused.context_data["yaml_errors"][0]
    assert not Sequence.objects.filter(key="other-key").exists()


# --- Permissions ----------------------------------------------------------------------------


def test_sales_see_the_flow_but_cannot_edit(client, salesperson):
    sequence = build_sequence([email_step("hello")], activate=False)
    client.force_login(salesperson)

    page = client.get(builder(sequence, edit="step", pk=sequence.steps.get().pk))
    refused = client.post(builder(sequence, edit="step", type="end"), {"key": "stop"})

    assert page.status_code == 200
    assert "form" not in page.context_data
    assert "+ Add a step here" not in page.content.decode()
    assert refused.status_code == 403
    assert sequence.steps.count() == 1


def test_deleting_a_step_retargets_the_branches_that_pointed_at_it(marketer_client):
    sequence = build_sequence(
        [
            step("branch", "branch_if", condition={"activity": "email_clicked"}, yes_step="gone"),
            step("gone", "end"),
            step("last", "end"),
        ],
        activate=False,
    )

    marketer_client.post(builder(sequence), {"delete": f"step-{sequence.steps.get(key='gone').pk}"})

    assert sequence.steps.get(key="branch").config == {"condition": {"activity": "email_clicked"}}
    assert list(sequence.steps.values_list("key", "position")) == [("branch", 0), ("last", 1)]


# --- Conversion between the widget and stored conditions -----------------------------------


@pytest.mark.parametrize(
    ("shape", "stored"),
    [
        (ACTIVITIES, [{"activity": "order_placed", "where": []}]),
        (
            EVENT,
            {
                "activity": "order_placed",
                "where": [{"field": "plan", "op": "exists", "value": True}],
            },
        ),
        (
            CONTACTS,
            [
                {"contact": "lifecycle_stage", "op": "in", "value": ["new_lead"]},
                {"contact": "properties.plan", "op": "eq", "value": "pro"},
                {"contact": "lead_score", "op": "gte", "value": 10},
                {"contact": "lead_score", "op": "lte", "value": 90},
                {"contact": "email", "op": "contains", "value": "@example.com"},
            ],
        ),
        (BRANCH, {"contact": "country", "op": "not_in", "value": ["DE"]}),
        (BRANCH, {"activity": "email_clicked", "where": []}),
    ],
)
def test_stored_conditions_survive_the_widget(shape, stored):
    assert widget_to_conditions(conditions_to_widget(stored, shape=shape), shape=shape) == stored


def test_the_widget_refuses_what_sequences_cannot_evaluate_in_words():
    nested = {"match": "all", "conditions": [{"match": "any", "conditions": []}]}
    consent = {"match": "all", "conditions": [{"field": "consent", "operator": "granted"}]}
    counted = {"match": "any", "conditions": [{**clicked(), "count": 3}]}

    with pytest.raises(WidgetConditionError, match="remove the nested groups"):
        widget_to_conditions(nested, shape=CONTACTS)
    with pytest.raises(WidgetConditionError, match="Condition 1: choose what to check"):
        widget_to_conditions(consent, shape=CONTACTS)
    with pytest.raises(WidgetConditionError, match="use 1 time"):
        widget_to_conditions(counted, shape=ACTIVITIES)
    with pytest.raises(NotRepresentable):
        conditions_to_widget([{"contact": "time_zone", "op": "eq", "value": "UTC"}], shape=CONTACTS)


# --- Business days ---------------------------------------------------------------------------


def test_business_days_skip_the_weekend():
    friday = datetime.datetime(2026, 3, 13, 10, 0, tzinfo=datetime.UTC)

    assert wait_end(friday, {"business_days": 1}) == friday + datetime.timedelta(days=3)
    assert wait_end(friday, {"business_days": 5}) == friday + datetime.timedelta(days=7)
    assert wait_end(friday, {"hours": 2}) == friday + datetime.timedelta(hours=2)


def test_the_review_says_when_the_first_email_goes_with_business_days(marketer_client):
    sequence = build_sequence(
        [step("pause", "wait_duration", duration={"business_days": 2}), email_step("hello")],
        activate=False,
    )
    Trigger.objects.filter(sequence=sequence).delete()

    page = marketer_client.get(reverse("admin:sequences_sequence_activate", args=[sequence.pk]))

    text = page.content.decode()
    assert "First email: step hello, after 2 business days." in text
    assert "Someone entering now:" in text


def test_sequence_owner_is_required_by_the_builder_review(marketer_client):
    sequence = build_sequence([email_step("hello")], activate=False, owner=None)

    flow = sequence_flow(sequence)

    assert [finding.message for finding in flow.general_problems] == ["The sequence has no owner."]


def test_the_engine_waits_business_days(
    clock, consenting_contact, django_capture_on_commit_callbacks
):
    build_sequence([step("wait", "wait_duration", duration={"business_days": 4}), email_step("hi")])
    with django_capture_on_commit_callbacks(execute=True):
        activity_record(kind="form_submitted", source="test", contact=consenting_contact)
    enrollment = Enrollment.objects.get(contact=consenting_contact)

    # Entered on Tuesday 10 March at 10:00 UTC: four business days later is Monday the 16th.
    assert enrollment.due_at == datetime.datetime(2026, 3, 16, 10, 0, tzinfo=datetime.UTC)
    clock.advance(days=5, hours=23)
    run(clock)
    assert mail.outbox == []
    clock.advance(hours=1)
    run(clock)
    assert len(mail.outbox) == 1


def test_the_prediction_trigger_and_the_best_time_wait_have_forms(marketer_client):
    sequence = draft()

    marketer_client.post(
        builder(sequence, edit="trigger", type="churn_risk_rose"), {"churn_risk_above": "70"}
    )
    marketer_client.post(
        builder(sequence, edit="step", type="wait_until_best_time"),
        {"key": "best", "within_hours": "12"},
    )
    page = marketer_client.get(builder(sequence))

    trigger = sequence.triggers.get()
    assert (trigger.type, trigger.churn_risk_above) == ("churn_risk_rose", 70)
    step = sequence.steps.get()
    assert (step.type, step.config) == ("wait_until_best_time", {"within_hours": 12})
    html = page.content.decode()
    assert "churn risk rises above 70%" in html
    assert "best send time, at most 12 hours" in html
