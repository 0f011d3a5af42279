"""One error shape for the whole API: RFC 9457 problem details (``application/problem+json``).

Every error carries ``type`` (a URI ending in a stable code), ``code`` (that code on its own, for
clients that switch on it), ``title``, ``status``, ``detail``, ``instance`` (the request path) and
``errors``: one entry per bad field, named by its dotted path (``items.0.email``).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from carely.orgs.suspension import OrganisationSuspended

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://carely.example/problems/"

TITLES = {
    "validation_error": "Some fields are invalid",
    "parse_error": "Malformed request body",
    "not_authenticated": "API key required",
    "authentication_failed": "Authentication failed",
    "malformed_authorization": "Malformed Authorization header",
    "unknown_api_key": "Unknown API key",
    "revoked_api_key": "Revoked API key",
    "permission_denied": "Not allowed",
    "missing_scope": "Missing scope",
    "method_not_permitted": "Not allowed",
    "organisation_suspended": "Organisation suspended",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "not_acceptable": "Not acceptable",
    "unsupported_media_type": "Unsupported media type",
    "throttled": "Too many requests",
    "idempotency_key_reused": "Idempotency-Key reused with a different request",
    "idempotency_request_in_progress": "Request with this Idempotency-Key still in progress",
    "invalid_idempotency_key": "Invalid Idempotency-Key",
    "server_error": "Internal server error",
}


def problem_body(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str,
    errors: list[dict[str, Any]] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_BASE + code,
        "code": code,
        "title": title or TITLES.get(code) or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "errors": errors or [],
    }


def flatten_errors(detail: Any, path: str = "") -> list[dict[str, Any]]:
    """DRF's nested error structure as a flat list of ``{"field", "code", "message"}``.

    ``non_field_errors`` (and a bare list at the top) get ``field: null``.
    """
    if isinstance(detail, dict):
        out: list[dict[str, Any]] = []
        for name, value in detail.items():
            if name == "non_field_errors":
                out.extend(flatten_errors(value, path))
            else:
                out.extend(flatten_errors(value, f"{path}.{name}" if path else str(name)))
        return out
    if isinstance(detail, list):
        out = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                # A list of nested objects (many=True): the index is part of the path.
                out.extend(flatten_errors(value, f"{path}.{index}" if path else str(index)))
            else:
                out.extend(flatten_errors(value, path))
        return out
    return [
        {
            "field": path or None,
            "code": getattr(detail, "code", None) or "invalid",
            "message": str(detail),
        }
    ]


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    fields = sorted({e["field"] for e in errors if e["field"]})
    if not fields:
        return "; ".join(e["message"] for e in errors) or "The request is invalid."
    noun = "field is" if len(fields) == 1 else "fields are"
    return f"{len(fields)} {noun} invalid: {', '.join(fields)}. See `errors` for each one."


def _code_of(exc: exceptions.APIException) -> str:
    detail = exc.detail
    code = getattr(detail, "code", None)
    return str(code or exc.default_code)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, OrganisationSuspended):
        from carely.api.permissions import OrganisationSuspendedError

        return OrganisationSuspendedError(str(exc))
    if isinstance(exc, ObjectDoesNotExist | Http404):
        # Deliberately generic: the same answer for "never existed" and "another tenant's".
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return exc


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    instance = request.path if request is not None else ""
    exc = _translate(exc)
    response = exception_handler(exc, context)  # sets WWW-Authenticate and Retry-After
    if response is None:
        # Unhandled: log with the traceback and answer in the same shape instead of an HTML 500.
        logger.exception("Unhandled error in API view", exc_info=exc)
        set_rollback()
        return Response(
            problem_body(
                status=500,
                code="server_error",
                detail="Something went wrong on our side; it has been logged.",
                instance=instance,
            ),
            status=500,
            content_type=PROBLEM_CONTENT_TYPE,
        )
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = problem_body(
            status=response.status_code,
            code="validation_error",
            detail=_validation_detail(errors),
            instance=instance,
            errors=errors,
        )
    else:
        assert isinstance(exc, exceptions.APIException)  # the only kind DRF's handler answers
        code = _code_of(exc)
        data = response.data
        detail = str(data.get("detail", "")) if isinstance(data, dict) else str(data)
        body = problem_body(
            status=response.status_code, code=code, detail=detail, instance=instance
        )
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_response(request: HttpRequest, *, status: int, code: str, detail: str) -> JsonResponse:
    """A problem answer outside DRF (the /api/ catch-all)."""
    return JsonResponse(
        problem_body(status=status, code=code, detail=detail, instance=request.path),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return problem_response(
        request,
        status=404,
        code="not_found",
        detail=f"No API endpoint at {request.path}. The API lives under /api/v1/; "
        "see /api/docs/ for the list.",
    )
