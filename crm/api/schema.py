"""OpenAPI details drf-spectacular cannot infer: the key scheme and the error responses."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer

from crm.api.serializers import ApiErrorSerializer

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
ERROR_DESCRIPTIONS = {
    "400": "Invalid request: `fields` names each field and why.",
    "401": "No API key, or an unknown or revoked one (error: key_unknown, key_revoked).",
    "403": "This key may not do this: a browser key outside its limits or origins.",
    "404": "No such object.",
    "413": "The request body is over the limit (API_MAX_BODY_BYTES, 10 MB by default).",
    "429": "The key's rate limit is used up; retry after `retry_after` seconds.",
}


class ApiAutoSchema(AutoSchema):
    """Document the errors every endpoint can answer with, all in the ApiError shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            error = OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[code])
            responses.setdefault(
                code, self._get_response_for_code(error, code, direction=direction)
            )
        return responses

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        # A body whose rule is "one of these fields" (or "one of these shapes") has no
        # required property for drf-spectacular to see, yet an empty body is refused.
        if isinstance(serializer, PolymorphicProxySerializer) or getattr(
            serializer, "needs_one_of", ()
        ):
            required = True
        return schema, required

    def _error_codes(self) -> list[str]:
        is_detail = "{" in self.path
        codes = ["401", "403", "429"]
        if self.method in WRITE_METHODS or not is_detail:
            codes.append("400")  # bad fields, or bad filter values on lists
        if self.method in WRITE_METHODS:
            codes.append("413")
        if is_detail:
            codes.append("404")
        return codes


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "crm.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from the admin or `manage.py create_api_key`, sent as "
            "`Authorization: Bearer ns_live_…`. Browser keys may only POST /events/ and "
            "/identify/ from their allowed origins.",
        }


class StrictSerializerScheme(OpenApiSerializerExtension):
    """Say in the schema what StrictSerializer enforces: no unknown fields.

    A serializer may also name fields of which at least one must be non-empty
    (`needs_one_of`), e.g. identify's email or external_id.
    """

    target_class = "crm.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        needs_one_of = getattr(self.target, "needs_one_of", ())
        if needs_one_of:
            schema["anyOf"] = [
                {"required": [name], "properties": {name: {"minLength": 1}}}
                for name in needs_one_of
            ]
        return schema
