"""Nightly reconciliation: pull each configured ESP's suppression list and merge it.

Webhooks can be lost after an ESP's retry window (Postmark ~10.5 h, SendGrid 24 h),
so the ESP's own list is read back and every entry goes through the same inbox and
processing as a webhook event. Entries get a stable event id, so a second run adds
nothing. Add an ESP with `register_reconciler("name", fetch)`, where `fetch()` returns
anymail tracking events (or raises when the ESP is not configured: see `Unconfigured`).
"""

import logging
from collections.abc import Callable, Iterable

import requests
from anymail.exceptions import AnymailConfigurationError
from anymail.signals import AnymailTrackingEvent
from anymail.utils import get_anymail_setting
from django.utils.dateparse import parse_datetime

from sequences.esp.inbox import esp_event_store, forget_pending
from sequences.esp.processing import esp_events_process

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 30
Fetch = Callable[[], Iterable[AnymailTrackingEvent]]
_reconcilers: dict[str, Fetch] = {}


class Unconfigured(Exception):
    """The ESP has no credentials here: skip it quietly."""


def register_reconciler(esp_name: str, fetch: Fetch) -> None:
    _reconcilers[esp_name] = fetch


def reconcilers() -> dict[str, Fetch]:
    return dict(_reconcilers)


def reconcile_all() -> dict[str, int]:
    """Merge every configured ESP's list; return entries seen per ESP."""
    results = {}
    for esp_name, fetch in reconcilers().items():
        try:
            events = list(fetch())
        except Unconfigured:
            continue
        for event in events:
            esp_event_store(event, esp_name)
        results[esp_name] = len(events)
    forget_pending()
    while esp_events_process():
        pass
    return results


# --- Postmark ---------------------------------------------------------------------------

#: Postmark SuppressionReason → (anymail event type, reject reason).
POSTMARK_REASONS = {
    "HardBounce": ("bounced", "bounced"),
    "SpamComplaint": ("complained", "spam"),
    "ManualSuppression": ("unsubscribed", "unsubscribed"),
}


def postmark_suppressions() -> list[AnymailTrackingEvent]:
    """GET /message-streams/{stream}/suppressions/dump (base URL from POSTMARK_API_URL)."""
    try:
        token = get_anymail_setting("server_token", esp_name="postmark", kwargs={}, allow_bare=True)
    except AnymailConfigurationError:
        raise Unconfigured from None
    api_url = get_anymail_setting(
        "api_url", esp_name="postmark", default="https://api.postmarkapp.com/"
    )
    stream = get_anymail_setting("message_stream", esp_name="postmark", default=None)
    stream = stream or "outbound"
    response = requests.get(
        f"{api_url.rstrip('/')}/message-streams/{stream}/suppressions/dump",
        headers={"Accept": "application/json", "X-Postmark-Server-Token": token},
        timeout=TIMEOUT_SECONDS,
    )
    response.raise_for_status()
    entries = response.json().get("Suppressions", [])
    return [event for entry in entries if (event := _postmark_event(stream, entry))]


def _postmark_event(stream: str, entry: dict) -> AnymailTrackingEvent | None:
    reason = entry.get("SuppressionReason", "")
    if reason not in POSTMARK_REASONS or not entry.get("EmailAddress"):
        return None
    event_type, reject_reason = POSTMARK_REASONS[reason]
    email = entry["EmailAddress"]
    return AnymailTrackingEvent(
        event_type=event_type,
        reject_reason=reject_reason,
        recipient=email,
        event_id=f"suppression:{stream}:{reason}:{email.lower()}",
        timestamp=parse_datetime(entry.get("CreatedAt") or ""),
        description=f"Postmark suppression list ({stream}): {reason}",
        # Shaped like a webhook payload so the per-ESP classifier reads it the same way.
        esp_event={**entry, "RecordType": "SuppressionDump", "Type": reason},
    )


register_reconciler("Postmark", postmark_suppressions)
