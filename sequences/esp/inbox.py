"""Persist, then acknowledge: one INSERT per webhook request, duplicates ignored by the database.

Inside a webhook request (`inbox_batch`, sequences.webhooks) the events of the POST are
collected and written together before the answer, in one statement however many the ESP
batched (SendGrid posts up to a thousand). Outside one (reconciliation), each is written
as it comes.

The processing task is enqueued when a request that stored events finishes, but only
when none is already queued (a cache key, cleared by the task as it starts): at
thousands of webhook POSTs a second, one task per POST was most of each POST's work
and a queue of tasks with nothing left to do. A one-minute sweep picks up anything
whose task was lost, so no stored event waits forever.
"""

import hashlib
import json
import logging
from contextlib import contextmanager

from asgiref.local import Local
from django.core.cache import cache
from django.utils import timezone

from crm.set_inserts import model_new, rows_insert
from sequences.esp.classify import classify, esp_slug, sending_domain
from sequences.models import EspEvent

logger = logging.getLogger(__name__)
PROCESS_TASK = "sequences.esp.tasks.process_esp_events_task"
_request = Local()
#: Set while a processing task is queued and has not started (sequences.esp.tasks).
QUEUED_KEY = "sequences:esp-processing-queued"
#: How long a queued task is trusted to start: after that, the next request queues one.
#: Without a shared cache (no REDIS_URL) the worker cannot clear the web process's key,
#: so this is also how often each web process queues one at most.
QUEUED_SECONDS = 5
_esp_event_new = model_new(EspEvent)  # EspEvent() without Model.__init__'s per-call cost


def event_key(esp: str, event_id: str, raw: object, recipient: str, event_type: str) -> str:
    """One key per (ESP event, recipient, type): SES sends one id for every recipient."""
    identity = event_id or json.dumps(raw, sort_keys=True, default=str)
    text = "\x1f".join([esp, identity, recipient, event_type])
    return hashlib.sha256(text.encode()).hexdigest()


def esp_event_store(event, esp_name: str) -> None:
    """Store an anymail tracking event once; a duplicate delivery inserts nothing."""
    esp = esp_slug(esp_name)
    raw = _json_safe(event.esp_event)
    recipient = (event.recipient or "").strip().lower()
    metadata = dict(event.metadata or {})
    now = timezone.now()
    key = event_key(esp, event.event_id or "", raw, recipient, event.event_type)
    row = _esp_event_new(
        esp=esp,
        event_key=key,
        event_id=(event.event_id or "")[:200],
        event_type=event.event_type,
        recipient=recipient[:254],
        esp_message_id=(event.message_id or "")[:200],
        message_key=str(metadata.get("message_uuid") or event.message_id or key)[:200],
        kind=classify(esp, event.event_type, event.reject_reason, raw),
        sending_domain=sending_domain(esp, raw),
        description=_text(event.description or event.mta_response or event.reject_reason),
        user_agent=_text(event.user_agent),
        click_url=(event.click_url or "")[:2000],
        metadata=metadata,
        raw=raw,
        occurred_at=event.timestamp or now,
        received_at=now,
    )
    batch = getattr(_request, "batch", None)
    if batch is not None:
        batch.append(row)
        return
    rows_insert(EspEvent, [row], ignore_conflicts=True)
    _request.pending = True


@contextmanager
def inbox_batch():
    """Collect the events stored inside the block; INSERT them at its end, in one statement.

    If the block raises, nothing is written (the ESP gets a 5xx and sends them again).
    """
    _request.batch = []
    try:
        yield
        rows = _request.batch
    finally:
        _request.batch = None
    if rows:
        # rows_insert, not bulk_create: its per-value compiling was a third of a POST.
        rows_insert(EspEvent, rows, ignore_conflicts=True)
        _request.pending = True


def _text(value) -> str:
    return str(value or "")[:300]


def _json_safe(payload) -> dict:
    """The raw ESP event as JSON (a dict for one event; lists are wrapped)."""
    data = json.loads(json.dumps(payload, default=str)) if payload is not None else {}
    return data if isinstance(data, dict) else {"items": data}


def forget_pending() -> None:
    """Outside a request (reconciliation) the caller processes the events itself."""
    _request.pending = False


def enqueue_pending_processing(**kwargs) -> None:
    """request_finished receiver: one processing task per request that stored events."""
    if not getattr(_request, "pending", False):
        return
    _request.pending = False
    try:
        if not cache.add(QUEUED_KEY, 1, QUEUED_SECONDS):
            return  # a queued task has not started yet: it will process these too
        from django_q.tasks import async_task

        async_task(PROCESS_TASK)
    except Exception:
        # Events are stored; the sweep processes them. Never fail an acknowledged request.
        logger.exception("could not enqueue ESP event processing; the sweep will pick it up")
