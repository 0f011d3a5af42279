"""Refuse an oversized upload from its declared length, before its body is read.

A view (or a DRF view class) that accepts files says how large a request may be::

    @upload_limit(import_max_bytes)
    def import_upload(request): ...

    class ContactFileListViewSet(...):
        upload_limit = staticmethod(max_bytes)

``UploadLimitMiddleware`` looks at ``Content-Length`` when the view is resolved and answers 413
at once when the body is larger than the limit plus room for the form's other fields. It sits
before ``CsrfViewMiddleware``, whose token check reads a form's body: without it a 2 GB upload to
a 25 MB limit was received, spooled to disk and only then refused. Django never reads past the
declared length (``LimitedStream``), so a body that lies about its length cannot get more in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from carely.api.errors import problem_response

# The multipart envelope and a form's other fields (kind, CSRF token) around the file itself.
FORM_OVERHEAD = 64 * 1024

View = TypeVar("View", bound=Callable[..., Any])


def upload_limit(limit: Callable[[], int]) -> Callable[[View], View]:
    """Mark a view as accepting at most ``limit()`` bytes of file (read at request time, so a
    setting changed in a test or at runtime is honoured)."""

    def mark(view: View) -> View:
        view.upload_limit = limit  # type: ignore[attr-defined]
        return view

    return mark


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def _limit_of(view_func: Any) -> Callable[[], int] | None:
    limit = getattr(view_func, "upload_limit", None)
    if limit is None:  # a DRF view: the attribute is on its class
        limit = getattr(getattr(view_func, "cls", None), "upload_limit", None)
    return limit


class UploadLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if request.method not in ("POST", "PUT", "PATCH"):
            return None
        limit_of = _limit_of(view_func)
        if limit_of is None:
            return None
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None  # Django's own parser refuses a malformed length
        limit = limit_of()
        if declared <= limit + FORM_OVERHEAD:
            return None
        detail = (
            f"The upload is {_megabytes(declared)}; files may be at most {_megabytes(limit)} "
            f"({limit:,} bytes). Compress or split the file and upload it again."
        )
        if request.path.startswith("/api/"):
            return problem_response(request, status=413, code="file_too_large", detail=detail)
        return render(request, "413.html", {"detail": detail}, status=413)
