"""Who may call what: every endpoint needs a key; most need a server key."""

from rest_framework import exceptions, permissions

from crm.api.cors import request_origin
from crm.api.serializers import BROWSER_REFUSED_KINDS, PROTECTED_FIELDS
from crm.models import ApiKey


def api_key_of(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class HasApiKey(permissions.BasePermission):
    """Any active key (authentication has already refused revoked ones)."""

    message = "Send an API key as `Authorization: Bearer <key>`."

    def has_permission(self, request, view):
        return api_key_of(request) is not None


class IsServerKey(permissions.BasePermission):
    """Server keys only: browser keys are public and may only send events and identify."""

    message = "This endpoint needs a server key; browser keys may only send events and identify."
    code = "server_key_required"

    def has_permission(self, request, view):
        api_key = api_key_of(request)
        return api_key is not None and api_key.kind == ApiKey.Kind.SERVER


class BrowserKeyOriginAllowed(permissions.BasePermission):
    """A browser key works only from the sites listed on it (the Origin header)."""

    code = "origin_not_allowed"

    def has_permission(self, request, view):
        api_key = api_key_of(request)
        if api_key is None or api_key.kind != ApiKey.Kind.BROWSER:
            return True
        origin = request_origin(request)
        if origin in api_key.allowed_origins:
            return True
        self.message = (
            f"Origin {origin or '(none)'} is not allowed for this browser key; "
            "add it to the key's allowed origins in the admin."
        )
        return False


def refuse_browser_fields(api_key: ApiKey, items: list, *, is_batch: bool) -> None:
    """Refuse (403) anything a browser key may not do, naming each item and field.

    Checked on the raw request, before validation: a public key asking for consent
    or a system event is refused outright rather than reported as a typo.
    """
    if api_key.kind != ApiKey.Kind.BROWSER:
        return
    refusals = {}
    for index, item in enumerate(items):
        prefix = f"events.{index}." if is_batch else ""
        for name, reason in _browser_refusals(item).items():
            refusals[f"{prefix}{name}"] = [reason]
    if refusals:
        raise exceptions.PermissionDenied(detail=refusals, code="browser_key_forbidden")


def _browser_refusals(item) -> dict[str, str]:
    if not isinstance(item, dict):
        return {}
    refusals = {
        name: f"A browser key cannot set {name}." for name in PROTECTED_FIELDS if name in item
    }
    kind = item.get("type")
    if isinstance(kind, str) and kind in BROWSER_REFUSED_KINDS:
        refusals["type"] = f"A browser key cannot send {kind} events; use a server key."
    traits = item.get("traits")
    if isinstance(traits, dict):
        for name in PROTECTED_FIELDS:
            if name in traits:
                refusals[f"traits.{name}"] = f"A browser key cannot set {name}."
    return refusals
