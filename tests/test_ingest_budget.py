"""An ingest batch costs the same queries for 10 events as for 1,000 (DESIGN.md, work in sets).

Scoring (engagement with conditions, a cap, a re-engagement rule, fit), trigger matching
with enrollment, segment refresh and enrollment runs all take part. Only the bulk INSERT
chunks may grow with the batch; tasks are queued once per transaction and kind, with ids.
"""

from collections import Counter

import pytest
from django.db import connection, transaction
from django_q.signals import pre_enqueue

from crm.models import Activity
from crm.services import ActivityInput, activity_record_batch
from crm.signals import activities_recorded
from scoring.models import ScoreChange
from sequences.models import Enrollment
from tests.factories import (
    ContactFactory,
    HandoffRuleFactory,
    ScoringConditionFactory,
    ScoringRuleFactory,
    SegmentFactory,
)
from tests.sequences.conftest import build_sequence, email_step

pytestmark = pytest.mark.django_db

#: Every statement of the recording transaction that is not an INSERT: the batch's own
#: (replay check, last-engaged update), scoring's reads and its one score UPDATE, trigger
#: matching, savepoints. Measured 24 (SQLite and PostgreSQL); a little headroom.
FIXED_QUERIES = 26
#: Ids per queued task never exceed this (the largest chunk any enqueuer uses).
MAX_IDS_PER_TASK = 1000


@pytest.fixture
def configured(db):
    """Rules, a handoff rule nobody reaches, a triggered sequence, a segment."""
    pricing = ScoringRuleFactory(key="pricing", activity_kind="page_viewed", points=5)
    ScoringConditionFactory(rule=pricing, field="path", operator="contains", value="/pricing")
    ScoringRuleFactory(
        key="capped-opens", activity_kind="email_opened", points=2, cap_points=4, cap_period_days=7
    )
    ScoringRuleFactory(key="back", activity_kind="", points=7, min_silence_days=30)
    fit = ScoringRuleFactory(key="cto", category="fit", activity_kind="", points=15)
    ScoringConditionFactory(rule=fit, field="job_title", operator="contains", value="CTO")
    HandoffRuleFactory(key="sales", score_threshold=10_000)
    build_sequence([email_step("hello")], trigger="form_submitted")
    SegmentFactory(key="leads")


def batch(contacts) -> list[ActivityInput]:
    kinds = ("page_viewed", "email_opened", "form_submitted", "email_sent")
    return [
        ActivityInput(
            kind=kinds[index % len(kinds)],
            source="test",
            contact_id=contact.pk,
            properties={"path": "/pricing" if index % 8 == 0 else "/blog"},
        )
        for index, contact in enumerate(contacts)
    ]


def statements(captured) -> tuple[list[str], list[str]]:
    sql = [query["sql"] for query in captured]
    inserts = [statement for statement in sql if statement.startswith("INSERT")]
    return [statement for statement in sql if not statement.startswith("INSERT")], inserts


@pytest.fixture
def enqueued():
    tasks: list[tuple[str, tuple]] = []

    def receiver(sender, task, **kwargs):
        tasks.append((task["func"], task["args"]))

    pre_enqueue.connect(receiver, dispatch_uid="test_ingest_budget")
    yield tasks
    pre_enqueue.disconnect(dispatch_uid="test_ingest_budget")


def test_ten_and_a_thousand_events_cost_the_same_queries(
    configured, django_assert_max_num_queries, django_capture_on_commit_callbacks, enqueued
):
    small = batch(ContactFactory.create_batch(10, job_title="CTO"))
    large = batch(ContactFactory.create_batch(1000, job_title="CTO"))

    with django_assert_max_num_queries(FIXED_QUERIES + 10) as small_queries:
        activity_record_batch(items=small)
    with django_assert_max_num_queries(FIXED_QUERIES + 40) as large_queries:
        activity_record_batch(items=large)

    small_other, _ = statements(small_queries)
    large_other, large_inserts = statements(large_queries)
    assert len(large_other) == len(small_other) <= FIXED_QUERIES
    # Activities, score changes, enrollments and their events, and the new enrollments'
    # report facts and daily counts (sequences/reports): bulk INSERTs only.
    assert len(large_inserts) <= 5 * _insert_chunks(1000) + 1
    assert Enrollment.objects.count() == 10 // 4 + 1000 // 4
    assert ScoreChange.objects.filter(rule__key="pricing").count() == 2 + 125
    assert ScoreChange.objects.filter(rule__key="cto").count() == 1010


def test_a_batch_queues_one_task_per_kind_with_ids_only(
    configured, django_capture_on_commit_callbacks, enqueued
):
    contacts = ContactFactory.create_batch(30)

    with django_capture_on_commit_callbacks(execute=True):
        activity_record_batch(items=batch(contacts))

    kinds = Counter(func for func, _args in enqueued)
    assert kinds == {
        "crm.tasks.refresh_segment_memberships_task": 1,
        "sequences.tasks.run_enrollments_task": 1,
    }
    _assert_by_reference(enqueued)


def test_many_service_calls_in_one_transaction_queue_one_task_per_kind(
    configured, django_capture_on_commit_callbacks, enqueued
):
    contacts = ContactFactory.create_batch(12)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for start in range(0, 12, 3):  # M=4 service calls, N=12 activities
            activity_record_batch(items=batch(contacts[start : start + 3]))

    kinds = Counter(func for func, _args in enqueued)
    assert kinds == {
        "crm.tasks.refresh_segment_memberships_task": 1,
        "sequences.tasks.run_enrollments_task": 1,
    }
    refresh = next(args for func, args in enqueued if func.startswith("crm."))
    assert refresh == (sorted(contact.pk for contact in contacts),)


def _assert_by_reference(enqueued) -> None:
    """Task arguments are ids (a bounded list of ints), never model instances."""
    for func, args in enqueued:
        assert isinstance(func, str), func
        for argument in args:
            if isinstance(argument, list):
                assert all(isinstance(pk, int) for pk in argument), func
                assert len(argument) <= MAX_IDS_PER_TASK, func
            else:
                assert isinstance(argument, int | str), (func, type(argument))


def _insert_chunks(rows: int) -> int:
    fields = [f for f in Activity._meta.concrete_fields if not f.primary_key]
    size = connection.ops.bulk_batch_size(fields, [None] * rows)
    return -(-rows // min(size, 500))


def test_a_batch_that_hands_off_many_leads_announces_their_activities_once(
    django_capture_on_commit_callbacks,
):
    ScoringRuleFactory(key="pricing", activity_kind="page_viewed", points=5)
    HandoffRuleFactory(key="sales", score_threshold=5)
    build_sequence([email_step("welcome-to-sales")], trigger="handed_off")
    contacts = ContactFactory.create_batch(8)
    announced: list[list[str]] = []

    def listen(sender, activities, **kwargs):
        announced.append(sorted({activity.kind for activity in activities}))

    activities_recorded.connect(listen, dispatch_uid="test_handoffs_announced_once")
    try:
        with django_capture_on_commit_callbacks():
            activity_record_batch(
                items=[
                    ActivityInput(kind="page_viewed", source="test", contact_id=contact.pk)
                    for contact in contacts
                ]
            )
    finally:
        activities_recorded.disconnect(dispatch_uid="test_handoffs_announced_once")

    # The batch itself, and ONE announcement for the 8 handed_off activities, not one per
    # lead: the receivers run once for all of them (from inside scoring's receiver, so
    # this late listener hears it first).
    assert sorted(announced) == [["handed_off"], ["page_viewed"]]
    assert Activity.objects.filter(kind="handed_off").count() == 8
    # Sequences still saw every one of them.
    assert Enrollment.objects.filter(sequence__key__isnull=False).count() == 8
