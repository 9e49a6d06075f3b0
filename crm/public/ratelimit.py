"""A per-IP, per-endpoint request limit for the public pages, counted in Django's cache.

Fixed one-minute windows: simple, and enough to stop a script hammering sign-ups or
probing tokens. The limits are per endpoint because one-click unsubscribes arrive
from a few mailbox providers' IPs (Gmail posts them), so that endpoint allows more.
The client is found through crm.client_ip (trusted proxies), counted per address or,
for IPv6, per /64; the limits come from the environment (settings.PUBLIC_RATE_LIMITS).

We keep this instead of django-ratelimit: it is twenty lines over the same cache, and
the one thing we need from a library (the client address behind proxies) is ours anyway.
"""

import functools
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse

from crm.client_ip import client_ip, rate_limit_key

DEFAULT_LIMITS_PER_MINUTE = {
    "unsubscribe": 60,
    "preferences": 30,
    "subscribe": 10,
    "subscribe_confirm": 30,
}
ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def rate_limited(endpoint: str, *, methods: frozenset[str] = ALL_METHODS):
    """Answer 429 once this client has used up the endpoint's requests for the minute.

    Only requests whose method is in `methods` spend from the budget (and are refused
    when it is spent), so a sign-up page view never uses up the sign-ups.
    """

    def decorate(view):
        @functools.wraps(view)
        def limited(request, *args, **kwargs):
            if request.method in methods and _over_limit(endpoint, client_ip(request)):
                return HttpResponse(
                    "Too many requests. Please try again in a minute.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                    headers={"Retry-After": "60"},
                )
            return view(request, *args, **kwargs)

        return limited

    return decorate


def _over_limit(endpoint: str, ip_address: str | None) -> bool:
    limits = {**DEFAULT_LIMITS_PER_MINUTE, **getattr(settings, "PUBLIC_RATE_LIMITS", {})}
    window = int(time.time() // 60)
    key = f"public-rate:{endpoint}:{rate_limit_key(ip_address)}:{window}"
    # add() then incr(): atomic on Redis and within one local-memory cache.
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add() and incr()
        cache.set(key, 1, timeout=120)
        count = 1
    return count > limits[endpoint]
