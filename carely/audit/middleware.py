"""Bind the request id and the acting person to the audit context for the whole request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from carely.audit.context import ANONYMOUS, Actor, bind_request, clean_request_id, unbind_request


class AuditContextMiddleware:
    """After AuthenticationMiddleware. API keys replace the actor when DRF authenticates them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = clean_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        actor = Actor.user(user.pk) if user is not None and user.is_authenticated else ANONYMOUS
        tokens = bind_request(request_id, actor)
        try:
            response = self.get_response(request)
        finally:
            unbind_request(tokens)
        response["X-Request-ID"] = request_id
        return response
