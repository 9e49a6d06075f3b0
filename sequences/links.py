"""Signed links in emails: the unsubscribe URL (RFC 8058 one-click) and its token.

The endpoint that serves the URL belongs to the deliverability issue; it should call
unsubscribe_token_read() and answer GET with a page and POST with the unsubscribe.
Tokens never expire: unsubscribe links must keep working for at least 60 days.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

#: Per-purpose salt: a token signed for anything else never reads as an unsubscribe token.
UNSUBSCRIBE_SALT = "nextstep.sequences.unsubscribe"
UNSUBSCRIBE_PATH = "/unsubscribe/"


@dataclass(frozen=True)
class UnsubscribeRequest:
    """What an unsubscribe token names: the contact, and the topic ("" for all marketing)."""

    contact_id: int
    topic_key: str


def unsubscribe_token(contact, topic=None) -> str:
    """Sign the contact's id and the topic key; opaque and hard to forge."""
    payload = {"c": contact.pk, "t": topic.key if topic is not None else ""}
    return signing.dumps(payload, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(contact, topic=None) -> str:
    """The absolute HTTPS URL for List-Unsubscribe and the link in the email body."""
    return f"{settings.SITE_URL}{UNSUBSCRIBE_PATH}{unsubscribe_token(contact, topic)}/"


def unsubscribe_token_read(token: str) -> UnsubscribeRequest | None:
    """Return what a token names, or None for a tampered, foreign or malformed token."""
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), int):
        return None
    return UnsubscribeRequest(contact_id=payload["c"], topic_key=str(payload.get("t", "")))


def unsubscribe_mailto() -> str:
    """The optional mailto: for List-Unsubscribe, from SEQUENCES_UNSUBSCRIBE_MAILTO."""
    address = getattr(settings, "SEQUENCES_UNSUBSCRIBE_MAILTO", "")
    return f"mailto:{address}?subject=unsubscribe" if address else ""
