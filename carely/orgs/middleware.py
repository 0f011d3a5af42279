"""Resolve the current organisation for a signed-in person (TEN-1).

The organisation comes from the person's memberships and the one they picked in the switcher, kept
in the session. It is never read from a request body or query string.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from carely.orgs import selectors
from carely.orgs.suspension import OrganisationSuspended, suspension_check_write

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

SESSION_KEY = "carely_organisation_id"


class OrganisationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.organisation = None  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            membership = selectors.membership_for_session(
                user=user, organisation_id=request.session.get(SESSION_KEY)
            )
            if membership is not None:
                request.membership = membership  # type: ignore[attr-defined]
                request.organisation = membership.organisation  # type: ignore[attr-defined]
        return self.get_response(request)


class SuspensionMiddleware:
    """Refuse every write of a suspended organisation in the web UI (TEN-3).

    Runs after OrganisationMiddleware. Safe methods pass, so staff keep read access; any unsafe
    method answers 403 with the reason. Signing in and out, switching organisation and language
    stay possible: they change the person's session, not the clinic's data. The API applies the
    same guard in its permission layer and answers in its own error shape.
    """

    EXEMPT_PREFIXES = (
        "/accounts/",
        "/organisation/switch/",
        "/language/",
        "/api/",
        "/platform/admin/",
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        organisation = getattr(request, "organisation", None)
        if (
            organisation is not None
            and organisation.is_suspended
            and request.method not in SAFE_METHODS
            and not request.path.startswith(self.EXEMPT_PREFIXES)
        ):
            try:
                suspension_check_write(organisation)
            except OrganisationSuspended as exc:
                return render(
                    request,
                    "orgs/suspended.html",
                    {"organisation": organisation, "message": str(exc)},
                    status=403,
                )
        return self.get_response(request)
