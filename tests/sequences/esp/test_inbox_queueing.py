"""One-event webhook POSTs at thousands a second (issue 10): what each POST may cost, and why
no stored event is left without a processing task when the POSTs stop checking for one.

sequences.esp.inbox: a web process checks that a processing task is queued at most once per
QUEUE_CHECK_SECONDS; every task's last pass comes that long after it starts.
"""

from unittest import mock

import pytest
from anymail.signals import AnymailTrackingEvent
from django.db import connections
from django.utils import timezone

from sequences.esp import inbox, tasks
from sequences.esp.inbox import PROCESS_TASK, QUEUED_KEY, esp_event_store
from sequences.models import EspEvent
from tests.sequences.esp.conftest import post_sendgrid, send_event
from tests.sequences.esp.test_webhooks import sendgrid_batch

pytestmark = pytest.mark.django_db
WINDOW = 0.5


class Clock:
    """time.monotonic for sequences.esp: moved on by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(inbox.time, "monotonic", clock)
    monkeypatch.setattr(inbox, "QUEUE_CHECK_SECONDS", WINDOW)
    return clock


@pytest.fixture
def async_task():
    with mock.patch("django_q.tasks.async_task") as queued:
        yield queued


@pytest.mark.parametrize("shape", ["one event (Postmark)", "100 events (SendGrid)"])
def test_a_webhook_post_is_one_query_whatever_it_carries(
    client, ledger, async_task, shape, django_assert_num_queries
):
    with django_assert_num_queries(1) as captured:
        if shape.startswith("one"):
            response = send_event(client, "postmark", "click", ledger)
        else:
            response = post_sendgrid(client, sendgrid_batch(ledger, 100))

    assert response.status_code == 200
    assert captured.captured_queries[0]["sql"].startswith("INSERT")
    assert EspEvent.objects.count() == (1 if shape.startswith("one") else 100)


def test_a_webhook_post_makes_no_health_check_round_trip(client, ledger, async_task):
    # CONN_HEALTH_CHECKS pings PostgreSQL (SELECT 1) before a request's first query; a
    # webhook's INSERT fails instead on a dead connection (a 500, and the ESP retries).
    database = connections["default"]
    with (
        mock.patch.object(database, "health_check_enabled", True),
        mock.patch.object(database, "health_check_done", False),
        mock.patch.object(database, "is_usable", return_value=True) as is_usable,
    ):
        response = send_event(client, "postmark", "click", ledger)

    assert response.status_code == 200
    is_usable.assert_not_called()
    assert EspEvent.objects.count() == 1


def test_a_web_process_checks_for_a_queued_task_once_per_window(
    client, ledger, clock, async_task, monkeypatch
):
    # The process's own window; with Redis (CI's PostgreSQL run) the shared mark would
    # also hold the second check back, on the real clock: that case is the next test's.
    monkeypatch.setattr(inbox, "_cache_is_shared", lambda: False)
    for _ in range(3):
        send_event(client, "postmark", "click", ledger)
        clock.now += WINDOW / 4
    assert async_task.call_count == 1, "one check in the window"

    clock.now += WINDOW
    send_event(client, "postmark", "open", ledger)

    assert async_task.call_count == 2


def test_with_a_shared_cache_a_check_finds_the_task_another_process_queued(
    client, ledger, clock, async_task, monkeypatch
):
    from django.core.cache import cache

    monkeypatch.setattr(inbox, "_cache_is_shared", lambda: True)
    cache.add(QUEUED_KEY, 1, inbox.QUEUED_SECONDS)  # queued by another web process

    send_event(client, "postmark", "click", ledger)

    async_task.assert_not_called()


@pytest.mark.parametrize("shared_cache", [False, True])
def test_a_failed_enqueue_is_checked_again_at_the_next_post(
    client, ledger, clock, shared_cache, monkeypatch
):
    monkeypatch.setattr(inbox, "_cache_is_shared", lambda: shared_cache)
    with mock.patch("django_q.tasks.async_task", side_effect=ConnectionError("broker down")):
        response = send_event(client, "postmark", "click", ledger)
    assert response.status_code == 200, "the event is stored: the ESP must not send it again"

    with mock.patch("django_q.tasks.async_task") as queued:
        send_event(client, "postmark", "open", ledger)

    queued.assert_called_once_with(PROCESS_TASK)


def _tracking_event(number: int) -> AnymailTrackingEvent:
    return AnymailTrackingEvent(
        event_type="delivered",
        timestamp=timezone.now(),
        event_id=f"evt-window-{number}",
        recipient="ada@example.com",
        esp_event={"n": number},
    )


def test_an_event_stored_inside_a_window_is_processed_by_the_task_that_started_in_it(
    ledger, monkeypatch
):
    # The web process checked (a task was queued) and then stores events without checking
    # for QUEUE_CHECK_SECONDS; the task may start at once, before those are stored.
    clock = Clock()
    monkeypatch.setattr(tasks.time, "monotonic", clock)
    monkeypatch.setattr(inbox, "QUEUE_CHECK_SECONDS", WINDOW)
    esp_event_store(_tracking_event(1), "Postmark")
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        esp_event_store(_tracking_event(2), "Postmark")  # stored while the task waits
        clock.now += seconds

    monkeypatch.setattr(tasks.time, "sleep", sleep)

    tasks.process_esp_events_task()

    assert waits == [WINDOW]
    assert not EspEvent.objects.filter(outcome=EspEvent.Outcome.PENDING).exists()
    assert EspEvent.objects.count() == 2


def test_a_task_whose_last_batch_began_after_the_window_does_not_wait(ledger, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(tasks.time, "monotonic", clock)
    monkeypatch.setattr(inbox, "QUEUE_CHECK_SECONDS", WINDOW)
    monkeypatch.setattr(tasks, "BATCH_SIZE", 1)
    real_process = tasks.esp_events_process

    def slow_process(**kwargs):
        handled = real_process(**kwargs)
        clock.now += WINDOW  # a long batch: the next one begins after the window
        return handled

    monkeypatch.setattr(tasks, "esp_events_process", slow_process)
    monkeypatch.setattr(tasks.time, "sleep", mock.Mock())
    esp_event_store(_tracking_event(1), "Postmark")

    tasks.process_esp_events_task()

    tasks.time.sleep.assert_not_called()
    assert not EspEvent.objects.filter(outcome=EspEvent.Outcome.PENDING).exists()


def test_a_task_that_hits_its_batch_limit_queues_the_next(ledger, monkeypatch, async_task):
    monkeypatch.setattr(tasks, "BATCH_SIZE", 1)
    monkeypatch.setattr(tasks, "MAX_BATCHES", 2)
    for number in range(3):
        esp_event_store(_tracking_event(number), "Postmark")

    tasks.process_esp_events_task()

    async_task.assert_called_once_with(PROCESS_TASK)
    assert EspEvent.objects.filter(outcome=EspEvent.Outcome.PENDING).count() == 1


def test_a_cached_webhook_route_follows_a_new_urlconf(client, ledger, settings, async_task):
    assert send_event(client, "postmark", "click", ledger).status_code == 200

    settings.ROOT_URLCONF = "crm.api.urls"  # no /anymail/ there

    assert send_event(client, "postmark", "open", ledger).status_code == 404


def test_the_hand_built_insert_stores_what_the_orm_would(ledger):
    occurred = timezone.now().replace(microsecond=123456)
    event = AnymailTrackingEvent(
        event_type="bounced",
        timestamp=occurred,
        event_id="",
        recipient=" Ada@Example.com ",
        message_id=ledger.esp_message_id,
        metadata={"message_uuid": str(ledger.uuid)},
        reject_reason="bounced",
        description="550 no such user",
        esp_event={"Type": "HardBounce", "From": "news@mail.example.com", "When": occurred},
    )

    esp_event_store(event, "Postmark")

    row = EspEvent.objects.get()
    assert (row.esp, row.event_type, row.kind) == ("postmark", "bounced", "hard_bounce")
    assert (row.recipient, row.sending_domain) == ("ada@example.com", "mail.example.com")
    assert row.occurred_at == occurred
    assert row.raw == {"Type": "HardBounce", "From": "news@mail.example.com", "When": str(occurred)}
    assert row.metadata == {"message_uuid": str(ledger.uuid)}
    assert row.message_key == str(ledger.uuid)
    assert row.event_key == inbox.event_key(
        "postmark", "", inbox._json_safe(event.esp_event), "ada@example.com", "bounced"
    ), "the same key as the JSON-safe copy gives: replays stay deduplicated"
    assert (row.outcome, row.processed_at, row.message_id) == ("pending", None, None)


def test_webhook_views_stay_csrf_exempt_without_the_webhook_middleware(client, ledger, settings):
    from django.urls import resolve

    settings.MIDDLEWARE = [
        name for name in settings.MIDDLEWARE if not name.endswith("EspWebhookMiddleware")
    ]
    client.handler.enforce_csrf_checks = True

    with mock.patch("django_q.tasks.async_task"):
        response = send_event(client, "postmark", "click", ledger)

    assert response.status_code == 200
    assert resolve("/anymail/postmark/tracking/").func.csrf_exempt is True
