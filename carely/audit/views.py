"""The DPO's view of the personal-data access log (CNT-3): filter, read, export."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from carely.audit.access_log import access_log_list
from carely.audit.forms import AccessLogFilterForm
from carely.audit.models import AccessLogEntry, ActorType
from carely.lib.safe_csv import csv_lines
from carely.orgs.permissions import require
from carely.orgs.roles import Perm
from carely.orgs.selectors import membership_list

PAGE_SIZE = 50


def _actor_names(request: HttpRequest) -> dict[str, str]:
    """Staff of this organisation by user id, so the log reads as names rather than numbers."""
    return {
        str(m.user_id): m.user.full_name or m.user.email
        for m in membership_list(organisation=request.organisation)  # type: ignore[attr-defined]
    }


def _filtered(request: HttpRequest) -> tuple[AccessLogFilterForm, Any]:
    form = AccessLogFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = {key: value for key, value in form.cleaned_data.items() if value}
    entries = access_log_list(organisation=request.organisation, **filters)  # type: ignore[attr-defined]
    if form.is_bound and not form.is_valid():
        # Never show (or export) the unfiltered log in place of what was asked for.
        entries = entries.none()
    return form, entries


def _actor_label(entry: AccessLogEntry, names: dict[str, str]) -> str:
    if entry.actor_type == ActorType.USER:
        return names.get(entry.actor_id, f"user #{entry.actor_id}")
    if entry.actor_type == ActorType.API_KEY:
        return f"API key #{entry.actor_id}"
    return f"{entry.get_actor_type_display()} {entry.actor_id}".strip()


@require(Perm.ACCESS_LOG_VIEW)
def access_log(request: HttpRequest) -> HttpResponse:
    form, entries = _filtered(request)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    names = _actor_names(request)
    rows = [{"entry": entry, "actor": _actor_label(entry, names)} for entry in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/access_log.html",
        {"form": form, "page": page, "rows": rows, "query": query.urlencode()},
    )


@require(Perm.ACCESS_LOG_VIEW)
def access_log_csv(request: HttpRequest) -> StreamingHttpResponse:
    _form, entries = _filtered(request)
    names = _actor_names(request)
    header = ["time", "actor_type", "actor", "subject_type", "subject_id", "action", "what"]
    header += ["purpose", "request_id"]
    rows = (
        [
            entry.occurred_at.isoformat(),
            entry.actor_type,
            _actor_label(entry, names),
            entry.subject_type,
            entry.subject_id,
            entry.action,
            " ".join(entry.what),
            entry.purpose,
            entry.request_id,
        ]
        for entry in entries.iterator(chunk_size=2000)
    )
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="access-log-{stamp}.csv"'
    return response
