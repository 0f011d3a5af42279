"""Permission checks by role, in one place (SEC-2).

``may`` answers for a person acting in their current organisation; ``require`` is the view
decorator. Denials of organisation data answer 404 where the object belongs elsewhere (selectors do
that) and 403 where the person's role lacks the permission.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from carely.orgs.models import Membership, User
from carely.orgs.roles import MFA_REQUIRED_ROLES, PLATFORM_PERMISSIONS, ROLE_PERMISSIONS, Perm


def permissions_for(*, user: User | Any, membership: Membership | None) -> frozenset[Perm]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    granted: set[Perm] = set(PLATFORM_PERMISSIONS.get(user.platform_role, frozenset()))
    if membership is not None and membership.user_id == user.pk:
        granted |= ROLE_PERMISSIONS.get(membership.role, frozenset())
    return frozenset(granted)


def may(*, user: User | Any, membership: Membership | None, perm: Perm) -> bool:
    return perm in permissions_for(user=user, membership=membership)


def request_may(request: HttpRequest, perm: Perm) -> bool:
    return may(user=request.user, membership=getattr(request, "membership", None), perm=perm)


def mfa_required_for(*, user: User | Any, membership: Membership | None) -> bool:
    """Admins, DPOs and platform roles always; everyone when their organisation asks for it."""
    if getattr(user, "platform_role", ""):
        return True
    if membership is None:
        return False
    return membership.role in MFA_REQUIRED_ROLES or membership.organisation.require_mfa_for_all


def require(
    *perms: Perm,
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """View decorator: anonymous people go to login; people lacking a permission get 403."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not all(request_may(request, perm) for perm in perms):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        wrapped.required_perms = perms  # type: ignore[attr-defined]
        return wrapped

    return decorator
