"""Who may call what: every endpoint needs a key; most need a server key."""

from rest_framework import exceptions, permissions

from crm.api.cors import request_origin
from crm.api.serializers import PROTECTED_FIELDS, browser_event_kinds
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
    or a business event is refused outright rather than reported as a typo.
    """
    refusals = browser_refusals(api_key, items)
    if refusals:
        raise browser_forbidden(refusals, is_batch=is_batch)


def browser_refusals(api_key: ApiKey, items: list) -> dict[int, dict[str, list[str]]]:
    """What a browser key may not do, per item index: {index: {field: [reason]}}."""
    if api_key.kind != ApiKey.Kind.BROWSER:
        return {}
    allowed_kinds = browser_event_kinds()
    refusals = {}
    for index, item in enumerate(items):
        found = _browser_refusals(item, allowed_kinds)
        if found:
            refusals[index] = {name: [reason] for name, reason in found.items()}
    return refusals


def browser_forbidden(
    refusals: dict[int, dict[str, list[str]]], *, is_batch: bool
) -> exceptions.PermissionDenied:
    """One 403 naming every refused field, as events.<index>.<field> in a batch."""
    detail = {
        f"events.{index}.{name}" if is_batch else name: reasons
        for index, fields in refusals.items()
        for name, reasons in fields.items()
    }
    return exceptions.PermissionDenied(detail=detail, code="browser_key_forbidden")


def _browser_refusals(item, allowed_kinds: frozenset[str]) -> dict[str, str]:
    if not isinstance(item, dict):
        return {}
    refusals = {
        name: f"A browser key cannot set {name}." for name in PROTECTED_FIELDS if name in item
    }
    kind = item.get("type")
    if isinstance(kind, str) and kind and kind not in allowed_kinds:
        refusals["type"] = (
            f"A browser key cannot send {kind} events: anyone can read a browser key, so "
            "business events need a server key."
        )
    traits = item.get("traits")
    if isinstance(traits, dict):
        for name in PROTECTED_FIELDS:
            if name in traits:
                refusals[f"traits.{name}"] = f"A browser key cannot set {name}."
    return refusals
