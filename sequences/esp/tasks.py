"""django-q2 entry points for ESP events and the deliverability guard."""

import time

from django.core.cache import cache

from sequences.esp import inbox
from sequences.esp.breaker import (
    breaker_alert_send,
    breaker_check,
    complaint_alert_send,
    complaint_warn_check,
)
from sequences.esp.inbox import PROCESS_TASK, QUEUED_KEY
from sequences.esp.processing import BATCH_SIZE, esp_events_process
from sequences.esp.reconcile import reconcile_all
from sequences.esp.sunset import sunset_inactive
from sequences.models import CircuitBreakerTrip, ComplaintRateAlert

MAX_BATCHES = 20


def process_esp_events_task() -> str:
    """Process pending events in batches (after a webhook request, and every minute)."""
    # First: an event stored from now on queues another task (sequences.esp.inbox).
    cache.delete(QUEUED_KEY)
    started = time.monotonic()
    # A web process that checked a task was queued before this one started may go on
    # storing events for QUEUE_CHECK_SECONDS without checking again: the last pass must
    # begin after that window, so it sees them (sequences.esp.inbox).
    last_pass_from = started + inbox.QUEUE_CHECK_SECONDS
    total = 0
    while True:
        handled, more, last_began = _drain()
        total += handled
        if more:
            # Events left after MAX_BATCHES: the next task goes on (this one must end).
            from django_q.tasks import async_task

            async_task(PROCESS_TASK)
            break
        if last_began >= last_pass_from:
            break
        time.sleep(max(0.0, last_pass_from - time.monotonic()))
    trip = breaker_check()
    if trip is None:
        complaint_warn_check()  # a trip already alerted the owners, more strongly
    return f"processed {total}" + (f"; breaker tripped ({trip.metric})" if trip else "")


def _drain() -> tuple[int, bool, float]:
    """Process until a batch comes back short: (events handled, whether some may be left,
    when the last batch began: everything stored before then has been processed)."""
    total = 0
    for _ in range(MAX_BATCHES):
        began = time.monotonic()
        handled = esp_events_process(limit=BATCH_SIZE)
        total += handled
        if handled < BATCH_SIZE:
            return total, False, began
    return total, True, began


def alert_breaker_tripped_task(trip_pk: int) -> str:
    trip = CircuitBreakerTrip.objects.filter(pk=trip_pk).first()
    return "trip gone" if trip is None else breaker_alert_send(trip=trip)


def alert_complaint_rate_task(alert_pk: int) -> str:
    alert = ComplaintRateAlert.objects.filter(pk=alert_pk).first()
    return "alert gone" if alert is None else complaint_alert_send(alert=alert)


def reconcile_suppressions_task() -> str:
    results = reconcile_all()
    return "; ".join(f"{esp}: {count} entries" for esp, count in results.items()) or "no ESPs"


def sunset_inactive_task() -> str:
    return f"suppressed {sunset_inactive()} inactive contacts"
