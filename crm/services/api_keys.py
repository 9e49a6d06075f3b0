"""API keys: created once, stored hashed, revoked for good."""

import datetime
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import ApiKey

#: Every key starts with this, so leaked keys are easy to spot in code and logs.
KEY_PREFIX = "ns_live_"
#: 32 random bytes: a key cannot be guessed, so a fast hash is enough to store it.
KEY_RANDOM_BYTES = 32
#: last_used_at moves at most this often, so using a key is not a write per request.
LAST_USED_PRECISION = datetime.timedelta(minutes=1)

ORIGIN_PATTERN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")


@dataclass(frozen=True)
class ApiKeyCreated:
    """The new key's row and the key itself, which is never available again."""

    api_key: ApiKey
    key: str


def api_key_hash(key: str) -> str:
    """Return the SHA-256 (hex) a key is stored and looked up by."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_origins_normalise(origins: Iterable[str]) -> list[str]:
    """Return origins as browsers send them (scheme://host[:port]), refusing anything else."""
    normalised = []
    for origin in origins:
        value = origin.strip().lower().rstrip("/")
        if not value:
            continue
        if not ORIGIN_PATTERN.match(value):
            raise ValidationError(
                {
                    "allowed_origins": f"{origin!r} is not an origin: write scheme and host only, "
                    "such as https://www.example.com (no path)."
                }
            )
        if value not in normalised:
            normalised.append(value)
    return normalised


@transaction.atomic
def api_key_create(
    *,
    name: str,
    kind: str,
    allowed_origins: Iterable[str] = (),
    rate_limit_per_minute: int | None = None,
    created_by: AbstractBaseUser | None = None,
) -> ApiKeyCreated:
    """Create a key and return it once; only its hash is stored."""
    origins = api_key_origins_normalise(allowed_origins)
    if kind == ApiKey.Kind.BROWSER and not origins:
        raise ValidationError(
            {"allowed_origins": "A browser key needs at least one allowed origin."}
        )
    random_part = secrets.token_urlsafe(KEY_RANDOM_BYTES)
    key = f"{KEY_PREFIX}{random_part}"
    api_key = ApiKey(
        name=name.strip(),
        kind=kind,
        prefix=random_part[:8],
        key_hash=api_key_hash(key),
        allowed_origins=origins,
        created_by=created_by,
    )
    if rate_limit_per_minute is not None:
        api_key.rate_limit_per_minute = rate_limit_per_minute
    api_key.full_clean(exclude=["created_by"])
    api_key.save()
    return ApiKeyCreated(api_key=api_key, key=key)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke the key for good; revoking twice keeps the first revocation time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_mark_used(*, api_key: ApiKey, now: datetime.datetime | None = None) -> None:
    """Stamp last_used_at, at most once a minute per key (no write when it is recent)."""
    now = now or timezone.now()
    stale = now - LAST_USED_PRECISION
    if api_key.last_used_at is not None and api_key.last_used_at > stale:
        return
    # Conditional, so concurrent requests with the same key write once between them.
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now
