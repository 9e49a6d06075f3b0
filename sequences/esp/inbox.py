"""Persist, then acknowledge: one INSERT per webhook request, duplicates ignored by the database.

Inside a webhook request (`inbox_batch`, sequences.webhooks) the events of the POST are
collected and written together before the answer, in one autocommitted statement however
many the ESP batched (SendGrid posts up to a thousand; Postmark, Mailgun and SES one).
Outside one (reconciliation, the demo), each is written as it comes and the caller
processes the events itself.

After a webhook request has stored its events, a processing task must be queued, but
not one per POST: at thousands of one-event POSTs a second, that was most of each
POST's work. So a web process makes sure of it at most once per `QUEUE_CHECK_SECONDS`
(`processing_ensure_queued`): it queues a task unless one is queued and not started yet
(a shared cache key, cleared by the task as it starts), and remembers having checked.
Events it stores until the window ends are covered without another check, because every
task makes a last pass over the inbox no earlier than `QUEUE_CHECK_SECONDS` after it
started (sequences.esp.tasks): a task that starts after a check passes over everything
stored before that check's window ended. A lost task leaves its key for `QUEUED_SECONDS`
at most, and the one-minute sweep picks up anything else, so no stored event waits forever.
"""

import functools
import hashlib
import json
import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection
from django.utils import timezone

from sequences.esp.classify import classify, esp_slug, sending_domain
from sequences.models import EspEvent

logger = logging.getLogger(__name__)
PROCESS_TASK = "sequences.esp.tasks.process_esp_events_task"
#: The rows of the webhook request being handled (a list inside `inbox_batch`, else None).
_batch: ContextVar[list | None] = ContextVar("esp_inbox_batch", default=None)
#: Set while a processing task is queued and has not started (sequences.esp.tasks).
QUEUED_KEY = "sequences:esp-processing-queued"
#: How long a queued task is trusted to start: after that, the next check queues another.
QUEUED_SECONDS = 5
#: How long a web process trusts its last check that a task is queued (see the module
#: docstring); every task's last pass comes at least this long after it started.
QUEUE_CHECK_SECONDS = 0.5
#: When this process last made sure a task was queued (time.monotonic()).
_checked_at = float("-inf")


def event_key(esp: str, event_id: str, raw: object, recipient: str, event_type: str) -> str:
    """One key per (ESP event, recipient, type): SES sends one id for every recipient.

    Without an event id (Postmark's deliveries have none) the payload is the identity,
    as JSON with sorted keys: a payload parsed from JSON (string keys) gives the same
    text before and after the JSON-safe copy stored in `raw`, so keys stay stable.
    """
    identity = event_id or json.dumps(raw, sort_keys=True, default=str)
    return _key(esp, identity, recipient, event_type)


def _key(esp: str, identity: str, recipient: str, event_type: str) -> str:
    text = "\x1f".join([esp, identity, recipient, event_type])
    return hashlib.sha256(text.encode()).hexdigest()


def esp_event_store(event, esp_name: str) -> None:
    """Store an anymail tracking event once; a duplicate delivery inserts nothing."""
    row = _event_row(event, esp_name)
    batch = _batch.get()
    if batch is not None:
        batch.append(row)
        return
    _rows_write([row])


@contextmanager
def inbox_batch():
    """Collect the events stored inside the block; INSERT them at its end, in one statement,
    then make sure a processing task is queued.

    If the block raises, nothing is written (the ESP gets a 5xx and sends them again).
    """
    token = _batch.set([])
    try:
        yield
        rows = _batch.get()
    finally:
        _batch.reset(token)
    if rows:
        # A webhook's INSERT goes without Django's pre-query health check (CONN_HEALTH_CHECKS
        # runs a `SELECT 1` round trip before each request's first query on PostgreSQL): on a
        # connection that died the INSERT fails instead, the ESP gets a 500 and retries, and
        # Django closes the broken connection as the request ends.
        connection.health_check_done = True
        _rows_write(rows)
        processing_ensure_queued()


def processing_ensure_queued() -> None:
    """Queue a processing task unless one is queued and not started; check at most once
    per QUEUE_CHECK_SECONDS in this process (the module docstring says why that is safe)."""
    global _checked_at
    now = time.monotonic()
    if now - _checked_at < QUEUE_CHECK_SECONDS:
        return
    # Before the check, not after: the window must end no later than the task's last pass.
    _checked_at = now
    marked = False
    try:
        # Without a shared cache the worker cannot clear the key, so each web process only
        # relies on its own window: a task per process per QUEUE_CHECK_SECONDS at most.
        if _cache_is_shared():
            if not cache.add(QUEUED_KEY, 1, QUEUED_SECONDS):
                return  # a queued task has not started yet: it will process these too
            marked = True
        from django_q.tasks import async_task

        async_task(PROCESS_TASK)
    except Exception:
        # Events are stored; the sweep processes them. Never fail an acknowledged request,
        # and let the next POST try again (no mark of a task that was never queued).
        _checked_at = float("-inf")
        logger.exception("could not enqueue ESP event processing; the sweep will pick it up")
        if marked:
            try:
                cache.delete(QUEUED_KEY)
            except Exception:
                logger.exception("could not clear the ESP processing mark")


def processing_forget_checks() -> None:
    """Forget this process's last check (tests; a process that must re-check at once)."""
    global _checked_at
    _checked_at = float("-inf")


def _cache_is_shared() -> bool:
    return not isinstance(caches[DEFAULT_CACHE_ALIAS], (LocMemCache, DummyCache))


# --- The row and its INSERT ------------------------------------------------------------


def _event_row(event, esp_name: str) -> dict:
    """The inbox row's column values for an anymail event (JSON columns as JSON text)."""
    esp = esp_slug(esp_name)
    payload = event.esp_event
    # Every ESP we mount hands over a dict; anything else is kept as {"items": ...}.
    raw = payload if isinstance(payload, dict) else _json_safe(payload)
    recipient = (event.recipient or "").strip().lower()
    metadata = event.metadata or {}
    now = timezone.now()
    event_id = event.event_id or ""
    if event_id:
        key = event_key(esp, event_id, raw, recipient, event.event_type)
        raw_text = json.dumps(raw, default=str)
    else:  # the payload is the identity (event_key): store the text the key was made of
        raw_text = json.dumps(raw, sort_keys=True, default=str)
        key = _key(esp, raw_text, recipient, event.event_type)
    return {
        "esp": esp,
        "event_key": key,
        "event_id": event_id[:200],
        "event_type": event.event_type,
        "kind": classify(esp, event.event_type, event.reject_reason, raw),
        "recipient": recipient[:254],
        "esp_message_id": (event.message_id or "")[:200],
        "message_key": str(metadata.get("message_uuid") or event.message_id or key)[:200],
        "message_id": None,
        "sending_domain": sending_domain(esp, raw),
        "description": _text(event.description or event.mta_response or event.reject_reason),
        "user_agent": _text(event.user_agent),
        "click_url": (event.click_url or "")[:2000],
        # Dumped once, here, with str() for anything JSON has no type for (as stored before).
        "metadata": json.dumps(metadata, default=str) if metadata else "{}",
        "raw": raw_text,
        "occurred_at": event.timestamp or now,
        "received_at": now,
        "processed_at": None,
        "outcome": EspEvent.Outcome.PENDING,
        "reason": "",
    }


#: (vendor, 1) → the one-row INSERT statement, the common case.
_statements: dict[tuple[str, int], str] = {}


def _rows_write(rows: list[dict]) -> None:
    """INSERT the rows in one autocommitted statement, skipping events already stored.

    Built by hand, once per row count: the ORM's per-value compiling (bulk_create, or
    crm.set_inserts with its per-call field adapters) was a large share of a one-event
    POST. The values are those the ORM writes: datetimes through the backend's own
    adaptation, JSON as the text JSONField stores.
    """
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        EspEvent.objects.bulk_create(
            [EspEvent(**{**row, **_json_values(row)}) for row in rows], ignore_conflicts=True
        )
        return
    columns = _columns()
    sql = _statements.get((vendor, len(rows)))
    if sql is None:
        sql = _statement(columns, len(rows))
        if len(rows) == 1:  # a batch's statement is built per POST (its rows amortise it)
            _statements[(vendor, 1)] = sql
    adapt_datetime = connection.ops.adapt_datetimefield_value
    json_param = _jsonb if vendor == "postgresql" else str
    params = []
    for row in rows:
        row = {
            **row,
            "occurred_at": adapt_datetime(row["occurred_at"]),
            "received_at": adapt_datetime(row["received_at"]),
            "metadata": json_param(row["metadata"]),
            "raw": json_param(row["raw"]),
        }
        params.extend(row[name] for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@functools.cache
def _columns() -> list[str]:
    """The inbox's columns (attnames) in model order, the primary key left to the database."""
    return [f.attname for f in EspEvent._meta.concrete_fields if not f.primary_key]


def _statement(columns: list[str], count: int) -> str:
    quote = connection.ops.quote_name
    fields = {f.attname: f.column for f in EspEvent._meta.concrete_fields}
    names = ", ".join(quote(fields[name]) for name in columns)
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    values = ", ".join([placeholder] * count)
    return (
        f"INSERT INTO {quote(EspEvent._meta.db_table)} ({names}) VALUES {values} "
        "ON CONFLICT DO NOTHING"
    )


def _jsonb(text: str):
    """JSON text as a jsonb parameter, without decoding and encoding it again."""
    return _Jsonb(text, dumps=_as_is)


try:  # psycopg is only installed for PostgreSQL
    from django.db.backends.postgresql.psycopg_any import Jsonb as _Jsonb
except ImportError:  # pragma: no cover
    _Jsonb = None


def _as_is(text: str) -> str:
    return text


def _json_values(row: dict) -> dict:
    return {"metadata": json.loads(row["metadata"]), "raw": json.loads(row["raw"])}


def _text(value) -> str:
    return str(value or "")[:300]


def _json_safe(payload) -> dict:
    """The raw ESP event as JSON (a dict for one event; lists are wrapped)."""
    data = json.loads(json.dumps(payload, default=str)) if payload is not None else {}
    return data if isinstance(data, dict) else {"items": data}
