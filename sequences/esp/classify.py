"""Turn an anymail event into our own kind, reading the ESP's raw payload where needed.

anymail's `bounced` covers soft bounces too (SES Transient, Postmark SoftBounce), so
bounces are classified per ESP from `esp_event` (reliability.md §3.3).
"""

from collections.abc import Callable

from sequences.models import EspEvent

Kind = EspEvent.Kind

#: anymail event types that map straight to a kind.
DIRECT = {
    "delivered": Kind.DELIVERED,
    "opened": Kind.OPENED,
    "clicked": Kind.CLICKED,
    "deferred": Kind.DEFERRED,
    "complained": Kind.COMPLAINT,
    "unsubscribed": Kind.UNSUBSCRIBED,
    "failed": Kind.FAILED,
}
#: Apple Mail Privacy Protection fetches images with this bare user agent.
APPLE_PROXY_USER_AGENT = "Mozilla/5.0"


def esp_slug(esp_name: str) -> str:
    """ "Amazon SES" → "amazon_ses": the form stored and used in activity sources."""
    return "_".join(esp_name.lower().split())


def classify(esp: str, event_type: str, reject_reason: str | None, raw: dict) -> str:
    if event_type == "bounced":
        return bounce_kind(esp, reject_reason, raw)
    if event_type == "rejected":
        return Kind.COMPLAINT if reject_reason == "spam" else Kind.FAILED
    return DIRECT.get(event_type, Kind.IGNORED)


def bounce_kind(esp: str, reject_reason: str | None, raw: dict) -> str:
    classifier = BOUNCE_CLASSIFIERS.get(esp, _generic_bounce_is_hard)
    return Kind.HARD_BOUNCE if classifier(reject_reason, raw) else Kind.SOFT_BOUNCE


def _ses_bounce_is_hard(reject_reason, raw: dict) -> bool:
    # Transient and Undetermined bounces may deliver later: only Permanent is hard.
    return (raw.get("bounce") or {}).get("bounceType") == "Permanent"


def _postmark_bounce_is_hard(reject_reason, raw: dict) -> bool:
    # Bounce webhooks say "Type"; subscription changes (suppressions) say "SuppressionReason".
    kind = raw.get("Type") or raw.get("SuppressionReason")
    return kind in {"HardBounce", "BadEmailAddress"}


def _mailgun_bounce_is_hard(reject_reason, raw: dict) -> bool:
    # anymail already turns severity=temporary into `deferred`; check anyway.
    return (raw.get("event-data") or {}).get("severity") == "permanent"


def _sendgrid_bounce_is_hard(reject_reason, raw: dict) -> bool:
    # SendGrid bounce events are type "bounce" (permanent) or "blocked" (temporary).
    return raw.get("type", "bounce") == "bounce"


def _generic_bounce_is_hard(reject_reason, raw: dict) -> bool:
    return reject_reason in {"bounced", "invalid"}


BOUNCE_CLASSIFIERS: dict[str, Callable[[str | None, dict], bool]] = {
    "amazon_ses": _ses_bounce_is_hard,
    "postmark": _postmark_bounce_is_hard,
    "mailgun": _mailgun_bounce_is_hard,
    "sendgrid": _sendgrid_bounce_is_hard,
}


def is_machine_open(user_agent: str | None, raw: dict) -> bool:
    """A prefetch by a privacy proxy, not a person reading, where the ESP lets us tell."""
    if raw.get("sg_machine_open") is True:  # SendGrid flags Apple MPP opens itself
        return True
    client_info = (raw.get("event-data") or {}).get("client-info") or {}
    if client_info.get("bot"):  # Mailgun names the bot (e.g. "apple")
        return True
    return (user_agent or "").strip() == APPLE_PROXY_USER_AGENT


def unsubscribe_covers_all(esp: str, raw: dict) -> bool:
    """Whether the ESP's unsubscribe stops all mail, or one list/group only."""
    if esp == "sendgrid":
        return raw.get("event") != "group_unsubscribe"
    return True


def sending_domain(esp: str, raw: dict) -> str:
    """The From domain, where the payload carries it (empty otherwise)."""
    sender = (
        raw.get("From")  # Postmark
        or (raw.get("mail") or {}).get("source")  # Amazon SES
        or (((raw.get("event-data") or {}).get("message") or {}).get("headers") or {}).get("from")
        or ""
    )
    address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rsplit("@", 1)[-1].lower() if "@" in address else ""
