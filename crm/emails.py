"""Email address normalisation and the keyed hash suppressions are looked up by."""

import hashlib
import hmac

from django.conf import settings


def normalise_email(value: str) -> str:
    """Return the address as Nextstep stores it: trimmed and lower-cased.

    Providers treat the local part case-insensitively in practice, and people type
    their address in any case; one person must be one contact.
    """
    return value.strip().lower()


def email_hash(email: str) -> str:
    """Return a keyed SHA-256 of the normalised address.

    Keyed (HMAC) rather than a plain hash so that a stolen suppression list cannot
    be reversed with a dictionary of addresses. The key is SUPPRESSION_HASH_KEY,
    which must never change once suppressions exist.
    """
    key = settings.SUPPRESSION_HASH_KEY.encode()
    return hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()
