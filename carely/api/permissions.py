"""Scope checks for API keys (SEC-3) and the suspension guard for writes (TEN-3).

A view declares what it needs in one of two ways:

- ``resource = "contacts"``: safe methods need ``contacts:read``, the others ``contacts:write``;
- ``required_scopes = {"GET": "contacts:read", "POST": "messages:write"}``: per method, where
  ``None`` means any valid key may call it (``/api/v1/me``).

A method the view does not cover is refused: an endpoint that forgot to declare its scope fails
closed instead of opening to every key.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from carely.api.models import ApiKey
from carely.api.scopes import scope_for
from carely.orgs.suspension import OrganisationSuspended, suspension_check_write

NO_SCOPE_DECLARED = object()


class MissingScope(PermissionDenied):
    default_code = "missing_scope"

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(
            f"This API key lacks the scope {scope!r} needed for this request. Ask an "
            "organisation admin for a key that carries it.",
            code="missing_scope",
        )


class OrganisationSuspendedError(APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "organisation_suspended"
    default_detail = "The organisation is suspended."


def required_scope(view: Any, method: str) -> str | object | None:
    """The scope a method needs on a view, None for "any key", or NO_SCOPE_DECLARED."""
    method = method.upper()
    declared = getattr(view, "required_scopes", None) or {}
    lookup = "GET" if method == "HEAD" else method
    if lookup in declared:
        return declared[lookup]
    resource = getattr(view, "resource", None)
    if resource:
        return scope_for(resource, write=method not in SAFE_METHODS)
    return NO_SCOPE_DECLARED


class HasScope(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return False  # DRF answers 401 with WWW-Authenticate, since no key authenticated
        method = request.method or "GET"
        if not hasattr(view, method.lower()):
            return True  # no handler: let DRF answer 405 rather than a misleading 403
        scope = required_scope(view, method)
        if scope is NO_SCOPE_DECLARED:
            raise PermissionDenied(
                f"This endpoint does not allow {method} requests with an API key.",
                code="method_not_permitted",
            )
        if isinstance(scope, str) and not key.has_scope(scope):
            raise MissingScope(scope)
        if method not in SAFE_METHODS:
            try:
                suspension_check_write(key.organisation)
            except OrganisationSuspended as exc:
                raise OrganisationSuspendedError(str(exc)) from exc
        return True
