"""CSV import screens (CNT-2): thin views over ``contacts.imports``.

Every view needs Perm.CONTACTS_EDIT and finds the job inside the person's current organisation,
so another organisation's job id answers 404. Writes of a suspended organisation are refused by
the middleware (POST) and again by the services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from carely.audit.services import audit_record
from carely.orgs.permissions import require
from carely.orgs.roles import Perm
from carely.web.uploads import upload_limit
from contacts import imports
from contacts.csv_io import ENCODING_LABELS, CsvError
from contacts.import_forms import ImportMappingForm, ImportUploadForm
from contacts.models import ImportJob, ImportState

DELIMITER_LABELS = {
    ";": gettext_lazy("semicolon (;)"),
    ",": gettext_lazy("comma (,)"),
    "\t": gettext_lazy("tab"),
}
REJECTIONS_SHOWN = 50


def _job(request: HttpRequest, job_id: int) -> ImportJob:
    organisation: Any = getattr(request, "organisation", None)
    if organisation is None:
        raise Http404
    return get_object_or_404(
        ImportJob.objects.for_organisation(organisation).select_related("organisation"),
        pk=job_id,
    )


def _shown(value: Any) -> str:
    """A preview cell as typed in a file: dates as YYYY-MM-DD, whatever the page language."""
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def _percent(job: ImportJob) -> int:
    if job.state == ImportState.COMPLETED:
        return 100
    if not job.file_size:
        return 0
    return min(99, job.bytes_read * 100 // job.file_size)


@upload_limit(imports.import_max_bytes)
@require(Perm.CONTACTS_EDIT)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = imports.contact_import_upload(
                organisation=request.organisation,  # type: ignore[attr-defined]
                user=request.user,
                uploaded=form.cleaned_data["file"],
            )
        except CsvError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("contacts:import_mapping", job_id=job.pk)
    return render(
        request,
        "contacts/import_upload.html",
        {"form": form, "max_mb": imports.import_max_bytes() // (1024 * 1024)},
    )


@require(Perm.CONTACTS_EDIT)
@require_http_methods(["GET", "POST"])
def import_mapping(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    if job.queued_at is not None:
        return redirect("contacts:import_progress", job_id=job.pk)
    form = ImportMappingForm(request.POST or None, header=job.header, initial_mapping=job.mapping)
    if request.method == "POST" and form.is_valid():
        try:
            imports.contact_import_map(job=job, mapping=form.mapping())
        except imports.ContactImportError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Columns saved. Check the preview, then start the import."))
            return redirect(reverse("contacts:import_mapping", args=[job.pk]) + "#preview")
    mapped = [
        (field, label)
        for field, label in imports.TARGET_FIELDS.items()
        if field in job.mapping.values()
    ]
    preview: list[imports.PreviewRow] = []
    if job.state == ImportState.MAPPED:
        try:
            preview = imports.contact_import_preview(job=job)
        except CsvError as exc:
            form.add_error(None, str(exc))
    rows = [
        {
            "row": p.row,
            "cells": [
                (_shown(p.values.get(field)), p.errors.get(field, [])) for field, _l in mapped
            ],
        }
        for p in preview
    ]
    return render(
        request,
        "contacts/import_mapping.html",
        {
            "job": job,
            "form": form,
            "encoding": ENCODING_LABELS.get(job.encoding, job.encoding),
            "delimiter": DELIMITER_LABELS.get(job.delimiter, job.delimiter),
            "mapped": mapped,
            "rows": rows,
            "can_start": job.state == ImportState.MAPPED,
        },
    )


@require(Perm.CONTACTS_EDIT)
@require_POST
def import_start(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    try:
        imports.contact_import_start(job=job)
    except imports.ContactImportError as exc:
        messages.error(request, str(exc))
        if job.queued_at is None:
            return redirect("contacts:import_mapping", job_id=job.pk)
    return redirect("contacts:import_progress", job_id=job.pk)


def _status(job: ImportJob) -> dict[str, Any]:
    return {
        "state": job.state,
        "finished": job.is_finished,
        "percent": _percent(job),
        "processed": job.processed,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "rejected": job.rejected,
        "result_url": reverse("contacts:import_result", args=[job.pk]),
    }


@require(Perm.CONTACTS_EDIT)
@require_GET
def import_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    if job.is_finished:
        return redirect("contacts:import_result", job_id=job.pk)
    if job.queued_at is None:
        return redirect("contacts:import_mapping", job_id=job.pk)
    return render(request, "contacts/import_progress.html", {"job": job, "status": _status(job)})


@require(Perm.CONTACTS_EDIT)
@require_GET
def import_status(request: HttpRequest, job_id: int) -> JsonResponse:
    return JsonResponse(_status(_job(request, job_id)))


@require(Perm.CONTACTS_EDIT)
@require_GET
def import_result(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    if not job.is_finished:
        return redirect("contacts:import_progress", job_id=job.pk)
    problems = [
        {
            "row": rejection.row,
            "field": imports.TARGET_FIELDS.get(field, field) if field else _("whole row"),
            "message": message,
        }
        for rejection in imports.import_rejections_first(job=job, n=REJECTIONS_SHOWN)
        for field, messages_ in rejection.errors.items()
        for message in ([messages_] if isinstance(messages_, str) else messages_)
    ]
    return render(
        request,
        "contacts/import_result.html",
        {
            "job": job,
            "problems": problems,
            "shown": min(job.rejected, REJECTIONS_SHOWN),
            "field_labels": imports.TARGET_FIELDS,
        },
    )


@require(Perm.CONTACTS_EDIT)
@require_GET
def import_rejected_csv(request: HttpRequest, job_id: int) -> StreamingHttpResponse:
    job = _job(request, job_id)
    if not job.is_finished or not job.rejected_file.name:
        raise Http404(_("There are no rejected rows to download (they are kept for a few days)."))
    audit_record(
        action="contacts.import_rejected_downloaded",
        organisation=job.organisation,
        object_type="contact_import",
        object_id=job.pk,
        details={"rejected": job.rejected},
    )
    response = StreamingHttpResponse(
        imports.import_rejected_csv(job=job), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected-rows.csv"'
    response["Cache-Control"] = "no-store"
    return response
