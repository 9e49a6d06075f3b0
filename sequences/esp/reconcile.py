"""Nightly reconciliation: pull each configured ESP's suppression list and merge it.

Webhooks can be lost after an ESP's retry window (Postmark ~10.5 h, SendGrid 24 h),
so the ESP's own list is read back and every entry goes through the same inbox and
processing as a webhook event. Entries get a stable event id, so a second run adds
nothing. Add an ESP with `register_reconciler("name", fetch)`, where `fetch()` returns
anymail tracking events (or raises when the ESP is not configured: see `Unconfigured`).

The same goes for `unknown` send-ledger rows (the ESP may have the message; we never
got its answer): where the ESP's API can find a message by our metadata, each unknown
row is looked up by its `message_uuid`, and one the ESP has is resolved as sent. Not
finding it proves nothing (search indexes lag), so such rows wait for a webhook or staff.
Add an ESP with `register_message_lookup("name", find)`, where `find(uuid)` returns the
ESP's message id or "" (the name is the EMAIL_BACKEND's, e.g. "postmark").
"""

import logging
from collections.abc import Callable, Iterable

import requests
from anymail.exceptions import AnymailConfigurationError
from anymail.signals import AnymailTrackingEvent
from anymail.utils import get_anymail_setting
from django.utils.dateparse import parse_datetime

from sequences.checks import enabled_esp
from sequences.esp.inbox import esp_event_store
from sequences.esp.processing import esp_events_process
from sequences.models import OutboundMessage
from sequences.services.ledger import outbound_reconcile

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 30
Fetch = Callable[[], Iterable[AnymailTrackingEvent]]
_reconcilers: dict[str, Fetch] = {}
Find = Callable[[str], str]
_lookups: dict[str, Find] = {}
#: Look up at most this many unknown rows per run (one API call each).
LOOKUP_LIMIT = 200


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
    while esp_events_process():
        pass
    return results


def register_message_lookup(backend: str, find: Find) -> None:
    _lookups[backend] = find


def unknown_messages_reconcile(*, limit: int = LOOKUP_LIMIT) -> int:
    """Ask the sending ESP about `unknown` rows; resolve those it has as sent."""
    find = _lookups.get(enabled_esp())
    if find is None:
        return 0
    unknown = OutboundMessage.objects.filter(state=OutboundMessage.State.UNKNOWN)
    resolved = 0
    for message in unknown.order_by("claimed_at", "pk")[:limit]:
        try:
            esp_message_id = find(str(message.uuid))
        except Unconfigured:
            return resolved
        except requests.RequestException as exc:
            logger.warning("ESP lookup of message %s failed: %s", message.uuid, exc)
            return resolved  # the ESP is unreachable: try again on the next run
        if esp_message_id:
            resolved += outbound_reconcile(
                message=message,
                state=OutboundMessage.State.SENT,
                evidence=f"found through the ESP's API as {esp_message_id}",
                resolution=OutboundMessage.Resolution.ESP_LOOKUP,
                esp_message_id=esp_message_id,
            )
    return resolved


# --- Postmark ---------------------------------------------------------------------------

#: Postmark SuppressionReason → (anymail event type, reject reason).
POSTMARK_REASONS = {
    "HardBounce": ("bounced", "bounced"),
    "SpamComplaint": ("complained", "spam"),
    "ManualSuppression": ("unsubscribed", "unsubscribed"),
}


def postmark_suppressions() -> list[AnymailTrackingEvent]:
    """GET /message-streams/{stream}/suppressions/dump (base URL from POSTMARK_API_URL)."""
    token, api_url = _postmark_credentials()
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


def postmark_find_message(message_uuid: str) -> str:
    """GET /messages/outbound?metadata_message_uuid=…: Postmark's search by our metadata."""
    token, api_url = _postmark_credentials()
    response = requests.get(
        f"{api_url.rstrip('/')}/messages/outbound",
        params={"count": 1, "offset": 0, "metadata_message_uuid": message_uuid},
        headers={"Accept": "application/json", "X-Postmark-Server-Token": token},
        timeout=TIMEOUT_SECONDS,
    )
    response.raise_for_status()
    messages = response.json().get("Messages") or []
    return str(messages[0].get("MessageID") or "") if messages else ""


def _postmark_credentials() -> tuple[str, str]:
    try:
        token = get_anymail_setting("server_token", esp_name="postmark", kwargs={}, allow_bare=True)
    except AnymailConfigurationError:
        raise Unconfigured from None
    api_url = get_anymail_setting(
        "api_url", esp_name="postmark", default="https://api.postmarkapp.com/"
    )
    return token, api_url


register_reconciler("Postmark", postmark_suppressions)
register_message_lookup("postmark", postmark_find_message)
