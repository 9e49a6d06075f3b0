"""`Authorization: Bearer <key>` authentication with Nextstep API keys."""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from crm.models import ApiKey
from crm.services.api_keys import api_key_hash, api_key_mark_used

SCHEME = "Bearer"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate by API key: `request.auth` is the ApiKey, `request.user` anonymous.

    A request without an Authorization header is left to the permissions (401); a
    header with an unknown or revoked key is refused here (401).
    """

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != SCHEME.lower() or not key.strip():
            raise exceptions.AuthenticationFailed(
                "Send the key as `Authorization: Bearer <key>`.", code="bad_authorization_header"
            )
        api_key = ApiKey.objects.filter(key_hash=api_key_hash(key.strip())).first()
        if api_key is None:
            raise exceptions.AuthenticationFailed("This API key is not known.", code="key_unknown")
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed(
                "This API key was revoked; ask an admin for a new one.", code="key_revoked"
            )
        api_key_mark_used(api_key=api_key)
        return AnonymousUser(), api_key

    def authenticate_header(self, request):
        # Naming a scheme makes DRF answer 401 (not 403) when credentials are missing.
        return f'{SCHEME} realm="api"'
