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
from django.urls import Resolver404, resolve

PREFIX = "/anymail/"
SUFFIX = "_tracking_webhook"


class EspWebhookMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.view_response = convert_exception_to_response(self._call_view)

    def __call__(self, request):
        if request.method == "POST" and request.path_info.startswith(PREFIX):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            if match is not None and (match.url_name or "").endswith(SUFFIX):
                request.resolver_match = match
                return self.view_response(request)
        return self.get_response(request)

    @staticmethod
    def _call_view(request):
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)
