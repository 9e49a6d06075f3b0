"""Just enough CORS for the two endpoints web pages call: events and identify.

Browsers ask first (a preflight OPTIONS without the key), then send the POST with
it. The preflight is answered for any origin some active browser key allows; the
POST itself is checked against its own key's origins (BrowserKeyOriginAllowed).
"""

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework.exceptions import APIException

from crm.models import ApiKey

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
#: Browsers cap this (Chrome at 2 hours); it saves a preflight per event.
PREFLIGHT_MAX_AGE_SECONDS = 86400


def request_origin(request) -> str:
    """The Origin header as keys store origins: lower case, no trailing slash."""
    return request.headers.get("Origin", "").strip().lower().rstrip("/")


def browser_origins_allowed() -> set[str]:
    """Every origin an active browser key allows (a handful of rows)."""
    rows = ApiKey.objects.filter(kind=ApiKey.Kind.BROWSER, revoked_at__isnull=True).values_list(
        "allowed_origins", flat=True
    )
    return {origin for origins in rows for origin in origins}


def is_preflight(request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def preflight_response(request) -> HttpResponse:
    origin = request_origin(request)
    if not origin or origin not in browser_origins_allowed():
        response = HttpResponse(status=403)
    else:
        response = HttpResponse(status=204)
        allow_origin(response, origin)
        response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    patch_vary_headers(response, ["Origin"])
    return response


def allow_origin(response, origin: str) -> None:
    response["Access-Control-Allow-Origin"] = origin


class BrowserCorsMixin:
    """For APIViews browsers call: answer preflights, and let allowed origins read replies."""

    def dispatch(self, request, *args, **kwargs):
        # Preflights carry no key, so they are answered before authentication runs.
        if is_preflight(request):
            return preflight_response(request)
        return super().dispatch(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        api_key = _api_key_or_none(request)
        origin = request_origin(request)
        if api_key is not None and origin and origin in api_key.allowed_origins:
            allow_origin(response, origin)
        patch_vary_headers(response, ["Origin"])
        return response


def _api_key_or_none(request) -> ApiKey | None:
    try:
        auth = request.auth  # authenticates now if the request failed before it could
    except APIException:
        return None
    return auth if isinstance(auth, ApiKey) else None
