"""One error shape for the whole API, so clients handle every failure the same way.

    {"error": "invalid", "message": "Some fields are invalid.",
     "fields": {"context.page_url": ["Enter a valid URL."]}}

`error` is a stable code, `message` a sentence for people, `fields` (when present)
maps dotted field paths to reasons, and 429s add `retry_after` in seconds.
"""

import math

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler

VALIDATION_MESSAGE = "Some fields are invalid; `fields` says which and why."


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def api_exception_handler(exc, context):
    """DRF's handler, plus services' Django ValidationErrors as 400s, in the shape above."""
    exc = _as_api_exception(exc)
    response = exception_handler(exc, context)
    if response is not None:
        response.data = error_body(exc)
    return response


def error_body(exc: exceptions.APIException) -> dict:
    """Return the JSON body for an APIException."""
    if not isinstance(exc.detail, dict | list):
        body: dict = {"error": _code(exc), "message": str(exc.detail)}
    else:
        fields = flatten_errors(exc.detail)
        is_validation = isinstance(exc, exceptions.ValidationError)
        message = VALIDATION_MESSAGE if is_validation else _first_message(fields)
        body = {"error": _code(exc), "message": message, "fields": fields}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["retry_after"] = math.ceil(exc.wait)
    return body


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into {"dotted.path": ["reason", ...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for name, value in detail.items():
            flat.update(flatten_errors(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, value in enumerate(detail):
            if value:
                flat.update(flatten_errors(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(message) for message in messages]}


def _code(exc: exceptions.APIException) -> str:
    """The exception's code; for per-field details, the code the fields share."""
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    if isinstance(exc, exceptions.ValidationError):
        return exc.default_code  # per-field codes (required, max_length…) are in the messages
    leaves = _leaf_codes(codes)
    return leaves[0] if len(set(leaves)) == 1 else exc.default_code


def _leaf_codes(codes) -> list[str]:
    if isinstance(codes, dict):
        codes = list(codes.values())
    if isinstance(codes, list):
        return [leaf for item in codes for leaf in _leaf_codes(item)]
    return [codes]


def _first_message(fields: dict[str, list[str]]) -> str:
    name, messages = next(iter(fields.items()))
    return f"{name}: {messages[0]}"


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return PayloadTooLarge(f"The request body is over the limit of {limit:,} bytes.")
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(detail=serializers.as_serializer_error(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return exc
