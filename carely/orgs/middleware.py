"""Resolve the current organisation for a signed-in person (TEN-1).

The organisation comes from the person's memberships and the one they picked in the switcher, kept
in the session. It is never read from a request body or query string.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from carely.orgs import selectors

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
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
