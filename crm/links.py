"""Signed tokens for the public pages: unsubscribe, preference centre, opt-in confirmation.

Each purpose has its own salt, so a token signed for one page never opens another.
Tokens are signed, not stored: nothing to look up, nothing to leak, and a forged or
tampered token simply fails to verify. Unsubscribe tokens never expire (RFC 8058 links
must keep working; the issue asks for at least 60 days); preference links last
PREFERENCES_TOKEN_MAX_AGE_DAYS (default 90) and opt-in confirmations
OPT_IN_TOKEN_MAX_AGE_DAYS (default 30: stale confirmations should not grant consent).
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

#: The salt predates this module (sequences signed it first); changing it would break
#: every unsubscribe link already sent.
UNSUBSCRIBE_SALT = "nextstep.sequences.unsubscribe"
PREFERENCES_SALT = "nextstep.crm.preferences"
OPT_IN_SALT = "nextstep.crm.opt_in"
UNSUBSCRIBE_PATH = "/unsubscribe/"
PREFERENCES_PATH = "/preferences/"
OPT_IN_CONFIRM_PATH = "/subscribe/confirm/"


@dataclass(frozen=True)
class UnsubscribeRequest:
    """What an unsubscribe token names: the contact, and the topic ("" for all marketing)."""

    contact_id: int
    topic_key: str


@dataclass(frozen=True)
class OptInRequest:
    """A sign-up waiting for confirmation: nothing is stored until the person confirms."""

    email: str
    topic_key: str
    consent_text_id: int | None
    first_name: str
    #: Inferred from the visitor's browser (an IANA name, validated), or "".
    time_zone: str = ""


def unsubscribe_token(contact, topic=None) -> str:
    """Sign the contact's id and the topic key; opaque and hard to forge."""
    payload = {"c": contact.pk, "t": topic.key if topic is not None else ""}
    return signing.dumps(payload, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(contact, topic=None) -> str:
    """The absolute HTTPS URL for List-Unsubscribe and the link in the email body."""
    return f"{settings.SITE_URL}{UNSUBSCRIBE_PATH}{unsubscribe_token(contact, topic)}/"


def unsubscribe_token_read(token: str) -> UnsubscribeRequest | None:
    """Return what a token names, or None for a tampered, foreign or malformed token."""
    payload = _load(token, salt=UNSUBSCRIBE_SALT, max_age=None)
    if payload is None or not isinstance(payload.get("c"), int):
        return None
    return UnsubscribeRequest(contact_id=payload["c"], topic_key=str(payload.get("t", "")))


def preferences_token(contact) -> str:
    """Sign the contact's id for the preference centre."""
    return signing.dumps({"c": contact.pk}, salt=PREFERENCES_SALT)


def preferences_url(contact) -> str:
    """The absolute URL of the contact's preference centre."""
    return f"{settings.SITE_URL}{PREFERENCES_PATH}{preferences_token(contact)}/"


def preferences_token_read(token: str) -> int | None:
    """Return the contact id a preference token names, or None when invalid or expired."""
    days = settings.PREFERENCES_TOKEN_MAX_AGE_DAYS
    payload = _load(token, salt=PREFERENCES_SALT, max_age=datetime.timedelta(days=days))
    if payload is None or not isinstance(payload.get("c"), int):
        return None
    return payload["c"]


def opt_in_token(request: OptInRequest) -> str:
    """Sign a pending sign-up; the confirmation link carries everything it needs."""
    payload = {
        "e": request.email,
        "t": request.topic_key,
        "x": request.consent_text_id,
        "n": request.first_name,
        "z": request.time_zone,
    }
    return signing.dumps(payload, salt=OPT_IN_SALT, compress=True)


def opt_in_confirm_url(request: OptInRequest) -> str:
    """The absolute URL of the page that confirms a sign-up."""
    return f"{settings.SITE_URL}{OPT_IN_CONFIRM_PATH}{opt_in_token(request)}/"


def opt_in_token_read(token: str) -> OptInRequest | None:
    """Return the pending sign-up a token carries, or None when invalid or expired."""
    days = settings.OPT_IN_TOKEN_MAX_AGE_DAYS
    payload = _load(token, salt=OPT_IN_SALT, max_age=datetime.timedelta(days=days))
    if payload is None or not isinstance(payload.get("e"), str):
        return None
    text_id = payload.get("x")
    return OptInRequest(
        email=payload["e"],
        topic_key=str(payload.get("t", "")),
        consent_text_id=text_id if isinstance(text_id, int) else None,
        first_name=str(payload.get("n", "")),
        time_zone=str(payload.get("z", "")),
    )


def _load(token: str, *, salt: str, max_age: datetime.timedelta | None) -> dict | None:
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired is a BadSignature too
        return None
    return payload if isinstance(payload, dict) else None
