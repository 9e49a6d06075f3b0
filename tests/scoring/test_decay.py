"""Decay: old engagement points halve, then expire, set-based and exactly once."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from scoring.models import ScoreChange
from scoring.services import decay, score_decay_apply, score_decay_apply_range, score_decay_ranges
from scoring.tasks import apply_score_decay_task
from tests.factories import ContactFactory
from tests.scoring.conftest import engagement_rule, fit_rule, record, score_of

pytestmark = pytest.mark.django_db


def test_points_halve_after_the_half_life_and_expire_later(contact, clock):
    engagement_rule("pricing", points=25, halve_after_days=30, expire_after_days=90)
    record(contact)

    clock.advance(days=29)
    score_decay_apply()
    before_half_life = score_of(contact)
    clock.advance(days=2)
    score_decay_apply()
    halved = score_of(contact)
    clock.advance(days=60)
    score_decay_apply()

    assert (before_half_life, halved, score_of(contact)) == (25, 13, 0)
    assert list(
        ScoreChange.objects.filter(reason="decay")
        .order_by("pk")
        .values_list("points", "decay_step")
    ) == [(-12, 1), (-13, 2)]


def test_expiry_alone_removes_all_points(contact, clock):
    engagement_rule("opens", points=5, kind="email_opened", expire_after_days=14)
    record(contact, kind="email_opened", times=3)

    clock.advance(days=15)
    result = score_decay_apply()

    assert score_of(contact) == 0
    assert (result.rows, result.contacts) == (3, 1)


def test_decay_runs_are_idempotent(contact, clock):
    engagement_rule("pricing", points=10, expire_after_days=7)
    record(contact)
    clock.advance(days=8)

    score_decay_apply()
    again = score_decay_apply()

    assert again.rows == 0
    assert score_of(contact) == 0


def test_negative_points_decay_back_towards_zero(contact, clock):
    engagement_rule("careers", points=-20, expire_after_days=30)
    record(contact)

    clock.advance(days=31)
    score_decay_apply()

    assert score_of(contact) == 0


def test_fit_points_and_recent_points_do_not_decay(clock):
    engagement_rule("pricing", points=10, expire_after_days=7)
    fit_rule("title", 15, [("job_title", "contains", "head")])
    person = ContactFactory(job_title="Head of Ops")
    record(person)
    clock.advance(days=8)
    record(person)

    score_decay_apply()

    assert score_of(person) == 15 + 10


def test_decay_is_set_based_whatever_the_number_of_contacts(clock):
    engagement_rule("pricing", points=10, halve_after_days=7, expire_after_days=30)
    few = [ContactFactory() for _ in range(2)]
    for person in few:
        record(person)
    clock.advance(days=8)
    with CaptureQueriesContext(connection) as small:
        score_decay_apply()
    many = [ContactFactory() for _ in range(40)]
    for person in many:
        record(person)
    clock.advance(days=8)

    with CaptureQueriesContext(connection) as large:
        score_decay_apply()

    assert len(large.captured_queries) == len(small.captured_queries)
    assert {score_of(person) for person in many} == {5}


def test_decay_task_reports_what_it_did(contact, clock):
    engagement_rule("pricing", points=10, expire_after_days=7)
    record(contact)
    clock.advance(days=8)

    outcome = apply_score_decay_task()

    assert outcome == "queued 1 decay ranges, 0 re-armed"
    assert score_of(contact) == 0


def test_the_decay_task_fans_out_one_task_per_contact_range(clock, monkeypatch):
    monkeypatch.setattr(decay, "CHUNK_CONTACTS", 2)
    engagement_rule("pricing", points=10, expire_after_days=7)
    people = ContactFactory.create_batch(5)
    for person in people:
        record(person)
    clock.advance(days=8)

    outcome = apply_score_decay_task()

    assert outcome == "queued 3 decay ranges, 0 re-armed"
    assert {score_of(person) for person in people} == {0}


def test_without_decaying_rules_no_range_is_queued(contact, clock):
    engagement_rule("pricing", points=10)
    record(contact)

    assert apply_score_decay_task() == "queued 0 decay ranges, 0 re-armed"


def test_ranges_give_the_same_result_as_one_pass_in_the_same_queries_each(clock):
    engagement_rule("pricing", points=10, halve_after_days=7, expire_after_days=30)
    people = ContactFactory.create_batch(6)
    for person in people:
        record(person, times=2)
    clock.advance(days=8)
    ranges = score_decay_ranges(chunk_size=2)

    counts = []
    for first, last in ranges:
        with CaptureQueriesContext(connection) as queries:
            score_decay_apply_range(first_contact_id=first, last_contact_id=last)
        counts.append(len(queries.captured_queries))

    assert len(ranges) == 3
    assert len(set(counts)) == 1
    assert {score_of(person) for person in people} == {10}  # 2 x 10, each halved
    assert ScoreChange.objects.filter(reason="decay").count() == 12


def test_an_interrupted_run_resumes_without_decaying_twice(clock):
    engagement_rule("pricing", points=10, expire_after_days=7)
    first, second = ContactFactory.create_batch(2)
    record(first)
    record(second)
    clock.advance(days=8)
    # A run that stopped after its first range (the worker died, the task timed out)...
    score_decay_apply_range(first_contact_id=first.pk, last_contact_id=first.pk)

    result = score_decay_apply()  # ...and the next run

    assert (result.rows, result.contacts) == (1, 1)
    assert (score_of(first), score_of(second)) == (0, 0)
    assert ScoreChange.objects.filter(reason="decay").count() == 2
