"""``Authorization: Bearer <key>`` authentication for the API (SEC-3, TEN-1).

The organisation of every API request is the key's organisation: views read it from
``request.auth.organisation`` and never from the body or the query string.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from carely.api.models import ApiKey
from carely.api.selectors import api_key_find_by_plaintext
from carely.api.services import api_key_touch
from carely.audit.context import Actor, set_actor

AUTH_SCHEME = "Bearer"
REALM = "api"


class ApiKeyUser:
    """Stands in for ``request.user`` on API requests: a key, not a person.

    It has no pk, no platform role and no membership, so permission code written for people
    (``carely.orgs.permissions``) grants it nothing.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    platform_role = ""
    pk = None
    id = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.organisation = key.organisation

    def __str__(self) -> str:
        return f"API key #{self.key.pk}"

    def get_username(self) -> str:
        return str(self)


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyUser, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != AUTH_SCHEME.lower().encode():
            raise AuthenticationFailed(
                "Use the Bearer scheme: `Authorization: Bearer <API key>`.",
                code="malformed_authorization",
            )
        if len(header) != 2:
            raise AuthenticationFailed(
                "Malformed Authorization header: expected `Bearer <API key>` with no spaces "
                "in the key.",
                code="malformed_authorization",
            )
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(
                "The API key contains characters that cannot be part of a key.",
                code="malformed_authorization",
            ) from None
        key = api_key_find_by_plaintext(plaintext=plaintext)
        if key is None:
            raise AuthenticationFailed("Unknown API key.", code="unknown_api_key")
        if key.is_revoked:
            raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
        api_key_touch(key=key)
        # Audit rows written during this request name the key as the actor; the audit
        # middleware restores the previous context when the request ends.
        set_actor(Actor.api_key(key.pk))
        return ApiKeyUser(key), key

    def authenticate_header(self, request: Any) -> str:
        return f'{AUTH_SCHEME} realm="{REALM}"'
