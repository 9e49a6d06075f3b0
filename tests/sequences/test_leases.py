"""Claims, leases and time budgets: no kill strands work for long, no two owners (finding 24),
and every sequences task may run twice (finding 26)."""

import datetime
import types
from unittest import mock

import pytest
from django.core import mail

from sequences.models import Enrollment, OutboundMessage
from sequences.services import enrollments_run_due
from sequences.services.moves import lease_length, task_budget_seconds
from sequences.services.running import enrollments_claim
from sequences.tasks import run_due_enrollments_task, run_enrollments_task
from tests.sequences.conftest import (
    START,
    build_sequence,
    bulk_consenting_contacts,
    bulk_due_enrollments,
    email_step,
)

pytestmark = pytest.mark.django_db


def seed(sequence, count: int) -> list[int]:
    contacts = bulk_consenting_contacts(
        count,
        prefix="lease",
        topic=sequence.topic,
        at=START - datetime.timedelta(days=1),
        time_zone="Europe/Berlin",
    )
    return bulk_due_enrollments(contacts, sequence, step="hello", at=START)


class Ticks:
    """A monotonic clock that moves one second each time it is read."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        self.now += 1
        return self.now


def test_the_lease_starts_at_the_claim_not_at_the_batch_time(clock):
    sequence = build_sequence([email_step("hello")], trigger=None)
    seed(sequence, 1)
    batch_now = clock.now
    clock.advance(minutes=3)  # the batch began three minutes before this claim

    enrollments_claim(now=batch_now, worker="w1", limit=10)

    assert Enrollment.objects.get().claimed_until == clock.now + lease_length()


@pytest.mark.parametrize("timeout", [10, 120, 900, 3600])
def test_the_lease_always_outlives_the_task_that_took_it(settings, timeout):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": timeout}

    assert lease_length() > datetime.timedelta(seconds=timeout)
    assert task_budget_seconds() < timeout


def test_a_row_leased_to_one_worker_cannot_be_claimed_by_another_before_the_lease_ends(clock):
    sequence = build_sequence([email_step("hello")], trigger=None)
    seed(sequence, 3)

    first = enrollments_claim(now=clock.now, worker="w1", limit=10)
    clock.advance(seconds=lease_length().total_seconds() - 1)
    second = enrollments_claim(now=clock.now, worker="w2", limit=10)
    clock.advance(seconds=2)
    third = enrollments_claim(now=clock.now, worker="w3", limit=10)

    assert (len(first), second, len(third)) == (3, [], 3)


def test_work_not_started_within_the_budget_is_released_at_once(clock, monkeypatch):
    sequence = build_sequence([email_step("hello")], trigger=None)
    seed(sequence, 10)
    ticks = Ticks()
    monkeypatch.setattr(
        "sequences.services.running.time", types.SimpleNamespace(monotonic=ticks.monotonic)
    )

    result = enrollments_run_due(now=clock.now, limit=10, deadline=ticks.now + 3.5)

    assert (result.claimed, result.emails_sent, len(result.released)) == (10, 3, 7)
    released = Enrollment.objects.filter(pk__in=result.released)
    assert set(released.values_list("claimed_by", "claimed_until")) == {("", None)}
    assert len(enrollments_claim(now=clock.now, worker="next", limit=10)) == 7


def test_the_sweep_hands_what_is_left_to_a_follow_up_task(clock, monkeypatch):
    sequence = build_sequence([email_step("hello")], trigger=None)
    seed(sequence, 60)
    monkeypatch.setattr("sequences.tasks.task_budget_seconds", lambda: 0)

    with mock.patch("sequences.tasks.async_task") as async_task:
        outcome = run_due_enrollments_task()

    async_task.assert_called_once_with("sequences.tasks.run_due_enrollments_task")
    assert "follow-up" in outcome
    assert not Enrollment.objects.exclude(claimed_by="").exists()  # nothing stays leased


def test_a_run_task_hands_the_rest_of_its_ids_to_a_follow_up(clock, monkeypatch):
    sequence = build_sequence([email_step("hello")], trigger=None)
    pks = seed(sequence, 80)
    monkeypatch.setattr("sequences.tasks.task_budget_seconds", lambda: 0)

    with mock.patch("sequences.tasks.async_task") as async_task:
        run_enrollments_task(pks)

    (name, rest), _ = async_task.call_args
    assert name == "sequences.tasks.run_enrollments_task"
    assert sorted(rest) == sorted(pks)  # nothing started, all handed on


def test_the_sweep_claims_small_batches_until_nothing_is_due(clock):
    sequence = build_sequence([email_step("hello")], trigger=None)
    seed(sequence, 120)

    with mock.patch("sequences.tasks.async_task") as async_task:
        outcome = run_due_enrollments_task()

    assert outcome == "claimed 120, sent 120"
    async_task.assert_not_called()


def test_running_the_same_tasks_twice_sends_each_email_once(clock):
    """django-q2 may deliver a task twice (finding 26): claims and the ledger absorb it."""
    sequence = build_sequence([email_step("hello")], trigger=None)
    pks = seed(sequence, 5)

    run_enrollments_task(pks)
    run_enrollments_task(pks)
    run_due_enrollments_task()
    run_due_enrollments_task()

    assert len(mail.outbox) == 5
    assert OutboundMessage.objects.filter(state="sent").count() == 5
