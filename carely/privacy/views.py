"""Records of processing pages (SEC-6): the clinic DPO's record and the platform's own."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from carely.lib.safe_csv import csv_lines
from carely.orgs.models import Organisation
from carely.orgs.permissions import may, require
from carely.orgs.roles import Perm
from carely.privacy.forms import ProcessingPurposeForm
from carely.privacy.models import ProcessingPurpose
from carely.privacy.records import (
    COLUMNS,
    processing_purpose_update,
    records_document,
    records_of_processing,
    records_rows,
)


def _platform_only(request: HttpRequest) -> None:
    # The platform's record is for the platform's DPO, not for a clinic's DPO.
    if not may(user=request.user, membership=None, perm=Perm.PROCESSING_RECORDS):
        raise PermissionDenied(_("The platform's record is for the platform's DPO."))


def _render(
    request: HttpRequest, organisation: Organisation | None, edit_url: str
) -> HttpResponseBase:
    activities = records_of_processing(organisation=organisation)
    fmt = request.GET.get("format")
    stamp = timezone.localdate().isoformat()
    name = organisation.slug if organisation else "platform"
    if fmt == "csv":
        stream = StreamingHttpResponse(
            csv_lines(COLUMNS, records_rows(activities)), content_type="text/csv"
        )
        stream["Content-Disposition"] = f'attachment; filename="records-{name}-{stamp}.csv"'
        return stream
    if fmt == "json":
        document = records_document(organisation=organisation, activities=activities)
        response = HttpResponse(json.dumps(document, indent=2), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="records-{name}-{stamp}.json"'
        return response
    return render(
        request,
        "privacy/records.html",
        {
            "activities": activities,
            "controller": organisation.name if organisation else _("the platform"),
            "edit_url": edit_url,
            "is_platform": organisation is None,
        },
    )


@require(Perm.PROCESSING_RECORDS)
def records(request: HttpRequest) -> HttpResponseBase:
    organisation: Any = getattr(request, "organisation", None)
    if organisation is None:
        return redirect("privacy:platform_records")
    return _render(request, organisation, "privacy:purpose_edit")


@require(Perm.PROCESSING_RECORDS)
def platform_records(request: HttpRequest) -> HttpResponseBase:
    _platform_only(request)
    return _render(request, None, "privacy:platform_purpose_edit")


def _edit(request: HttpRequest, purpose: ProcessingPurpose, back: str) -> HttpResponse:
    form = ProcessingPurposeForm(request.POST or None, instance=purpose)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        # The form already wrote the values onto the instance; reload so the service sees the
        # stored row, applies the change once and records what changed.
        purpose.refresh_from_db()
        processing_purpose_update(purpose=purpose, by=request.user, **changes)  # type: ignore[arg-type]
        messages.success(request, _("The record of processing was updated."))
        return redirect(back)
    status = 400 if form.errors else 200
    return render(
        request, "privacy/purpose_edit.html", {"form": form, "purpose": purpose}, status=status
    )


@require(Perm.PROCESSING_RECORDS)
def purpose_edit(request: HttpRequest, purpose_id: int) -> HttpResponse:
    organisation: Any = getattr(request, "organisation", None)
    purpose = get_object_or_404(
        ProcessingPurpose.objects.for_organisation(organisation), pk=purpose_id
    )
    return _edit(request, purpose, "privacy:records")


@require(Perm.PROCESSING_RECORDS)
def platform_purpose_edit(request: HttpRequest, purpose_id: int) -> HttpResponse:
    _platform_only(request)
    purpose = get_object_or_404(ProcessingPurpose, organisation=None, pk=purpose_id)
    return _edit(request, purpose, "privacy:platform_records")
