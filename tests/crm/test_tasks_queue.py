"""One coalesced task per transaction and kind; task results of successes are not kept."""

from collections import Counter

import pytest
from django.conf import settings
from django.db import transaction
from django_q.models import Success
from django_q.signals import pre_enqueue
from django_q.tasks import async_task

from crm import tasks as crm_tasks
from crm.models import Activity
from crm.receivers import REFRESH_TASK
from crm.services import activity_record
from crm.tasks_queue import enqueue_once_on_commit
from tests.factories import ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db
PATH = "tests.crm.test_tasks_queue.collect"
collected: list[list[int]] = []


def collect(ids: list[int]) -> str:
    collected.append(ids)
    return f"{len(ids)} ids"


@pytest.fixture(autouse=True)
def fresh():
    collected.clear()


@pytest.fixture
def enqueued():
    """Every task queued (sync mode runs them inline), as (func, args)."""
    tasks: list[tuple[str, tuple]] = []

    def receiver(sender, task, **kwargs):
        tasks.append((task["func"], task["args"]))

    pre_enqueue.connect(receiver, dispatch_uid="test_tasks_queue")
    yield tasks
    pre_enqueue.disconnect(dispatch_uid="test_tasks_queue")


def test_many_calls_in_one_transaction_queue_one_task(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for pk in (3, 1, 2, 3):
            enqueue_once_on_commit(PATH, [pk])

    assert collected == [[1, 2, 3]]


def test_big_collections_are_queued_in_bounded_chunks(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_once_on_commit(PATH, range(1, 701), chunk_size=300)
        enqueue_once_on_commit(PATH, range(701, 1201), chunk_size=300)

    assert [len(ids) for ids in collected] == [300, 300, 300, 300]
    assert [pk for ids in collected for pk in ids] == list(range(1, 1201))


def test_each_task_path_gets_its_own_task(django_capture_on_commit_callbacks, enqueued):
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_once_on_commit(PATH, [1])
        enqueue_once_on_commit("tests.crm.test_tasks_queue.other", [2])
        enqueue_once_on_commit(PATH, [3])

    assert Counter(func for func, _args in enqueued) == {
        PATH: 1,
        "tests.crm.test_tasks_queue.other": 1,
    }


def other(ids: list[int]) -> str:
    return "ok"


def test_nothing_is_queued_before_the_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        enqueue_once_on_commit(PATH, [1])

    assert collected == []
    assert len(callbacks) == 1


def test_ids_of_a_surviving_call_are_not_lost_when_an_earlier_savepoint_rolls_back(
    django_capture_on_commit_callbacks,
):
    # The first call's on_commit callback goes with its savepoint; the second call's survives.
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue_once_on_commit(PATH, [1])
            raise RuntimeError("roll back the savepoint")
        enqueue_once_on_commit(PATH, [2])

    # Id 1 may ride along (harmless: tasks re-read by id); id 2 must be there.
    assert len(collected) == 1
    assert 2 in collected[0]


def test_a_rolled_back_collection_is_dropped(django_capture_on_commit_callbacks):
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_once_on_commit(PATH, [1])
        raise RuntimeError("roll back")

    with django_capture_on_commit_callbacks(execute=True):
        enqueue_once_on_commit(PATH, [2])

    assert collected == [[2]]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_task_is_queued_at_once():
    enqueue_once_on_commit(PATH, [5, 4])

    assert collected == [[4, 5]]


def test_many_activity_records_in_one_transaction_queue_one_segment_refresh(
    django_capture_on_commit_callbacks, enqueued
):
    SegmentFactory()
    contacts = ContactFactory.create_batch(5)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for contact in contacts:  # e.g. five sends, each recording email_sent on its own
            activity_record(kind=Activity.Kind.EMAIL_SENT, source="test", contact=contact)
            activity_record(kind=Activity.Kind.PAGE_VIEWED, source="test", contact=contact)

    refreshes = [args for func, args in enqueued if func == REFRESH_TASK]
    assert refreshes == [(sorted(contact.pk for contact in contacts),)]


def test_a_successful_task_leaves_no_result_row():
    # save_limit > 0 made the monitor lock every saved success row (issue #10); -1 keeps
    # failures only.
    assert settings.Q_CLUSTER["save_limit"] == -1

    async_task("math.floor", 1.5)

    assert Success.objects.count() == 0


def test_the_changed_contacts_sweep_hands_out_bounded_refresh_tasks(monkeypatch, enqueued):
    monkeypatch.setattr(crm_tasks, "REFRESH_CHUNK", 2)
    SegmentFactory()
    contacts = ContactFactory.create_batch(5)

    outcome = crm_tasks.refresh_recently_changed_contacts_task()

    refreshes = [args[0] for func, args in enqueued if func == REFRESH_TASK]
    assert outcome == "5 contacts queued for a segment refresh"
    assert [len(ids) for ids in refreshes] == [2, 2, 1]
    assert sorted(pk for ids in refreshes for pk in ids) == sorted(c.pk for c in contacts)
