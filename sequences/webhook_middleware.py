"""ESP webhook POSTs skip the middleware that does nothing for them.

A webhook POST is authenticated by the ESP's own scheme (basic auth, a signature, SNS's
certificate), answered with an empty 200 and read by no browser: sessions, the user,
messages, CSRF (anymail exempts it), clickjacking and CSP headers, axes' login tracking,
whitenoise and APPEND_SLASH only cost it time (about a fifth of a single-event POST's
CPU, docs/performance.md). Placed right after SecurityMiddleware, so HTTPS redirects and
security headers still apply; exceptions become responses as Django makes them (a
malformed body is a 400, our own failure a 500 so the ESP retries).
"""

from django.core.handlers.exception import convert_exception_to_response
from django.urls import Resolver404, get_resolver, get_urlconf

PREFIX = "/anymail/"
SUFFIX = "_tracking_webhook"


class EspWebhookMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.view_response = convert_exception_to_response(self._call_view)
        # The webhook URLs resolved so far, for the resolver they came from: walking the
        # whole URLconf was a twentieth of a one-event POST, and only a few URLs are
        # webhooks. A new resolver (another URLconf, or URLs reloaded) starts afresh.
        self._resolved = (None, {})

    def __call__(self, request):
        if request.method == "POST" and request.path_info.startswith(PREFIX):
            match = self._webhook_match(request.path_info)
            if match is not None:
                request.resolver_match = match
                return self.view_response(request)
        return self.get_response(request)

    def _webhook_match(self, path):
        resolver = get_resolver(get_urlconf())
        known_resolver, matches = self._resolved
        if known_resolver is not resolver:
            matches = {}
            self._resolved = (resolver, matches)
        match = matches.get(path)
        if match is None:
            try:
                match = resolver.resolve(path)
            except Resolver404:
                return None
            if not (match.url_name or "").endswith(SUFFIX):
                return None
            matches[path] = match  # only webhook URLs: as many as the ESPs mounted
        return match

    @staticmethod
    def _call_view(request):
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
