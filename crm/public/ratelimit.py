"""A per-IP, per-endpoint request limit for the public pages, counted in Django's cache.

Fixed one-minute windows: simple, and enough to stop a script hammering sign-ups or
probing tokens. The limits are per endpoint because one-click unsubscribes arrive
from a few mailbox providers' IPs (Gmail posts them), so that endpoint allows more.
"""

import functools
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse

DEFAULT_LIMITS_PER_MINUTE = {
    "unsubscribe": 60,
    "preferences": 30,
    "subscribe": 10,
    "subscribe_confirm": 30,
}


def rate_limited(endpoint: str):
    """Answer 429 once this client IP has used up the endpoint's requests for the minute."""

    def decorate(view):
        @functools.wraps(view)
        def limited(request, *args, **kwargs):
            if _over_limit(endpoint, request.META.get("REMOTE_ADDR", "")):
                return HttpResponse(
                    "Too many requests. Please try again in a minute.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                    headers={"Retry-After": "60"},
                )
            return view(request, *args, **kwargs)

        return limited

    return decorate


def _over_limit(endpoint: str, ip_address: str) -> bool:
    limits = {**DEFAULT_LIMITS_PER_MINUTE, **getattr(settings, "PUBLIC_RATE_LIMITS", {})}
    window = int(time.time() // 60)
    key = f"public-rate:{endpoint}:{ip_address}:{window}"
    # add() then incr(): atomic on Redis and within one local-memory cache.
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add() and incr()
        cache.set(key, 1, timeout=120)
        count = 1
    return count > limits[endpoint]
