"""Rate limits per API key, at the rate set on the key.

Counts live in Django's cache: per process with the default local-memory cache,
shared by every web process when REDIS_URL configures Redis as the cache.
"""

from rest_framework.throttling import SimpleRateThrottle

from crm.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Allow `rate_limit_per_minute` requests per key in any sliding minute; then 429."""

    scope = "api_key"

    def __init__(self):
        # The rate belongs to each key, so it is read per request in allow_request.
        self.rate = None

    def allow_request(self, request, view):
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        self.rate = f"{api_key.rate_limit_per_minute}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        # The prefix as well as the pk: test databases reuse pks, caches outlive them.
        api_key = request.auth
        return self.cache_format % {"scope": self.scope, "ident": f"{api_key.pk}-{api_key.prefix}"}
