"""Staff pages for contact files (CNT-5): the files of one contact, upload, download, delete.

A download first asks why (CNT-3): the purpose form submits by GET, because downloading reads and
a suspended organisation's staff keep read access (TEN-3); the access-log row is written before
the file is handed out.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from carely.audit.access_log import access_log_record
from carely.audit.models import AccessAction
from carely.orgs.models import Organisation
from carely.orgs.permissions import request_may, require
from carely.orgs.roles import Perm
from carely.orgs.suspension import OrganisationSuspended
from carely.web.uploads import upload_limit
from contacts.models import Contact
from files import selectors
from files.forms import ContactFileUploadForm, DownloadPurposeForm
from files.models import ContactFile
from files.services import (
    ContactFileRefused,
    contact_file_add,
    contact_file_delete,
    max_bytes,
)
from files.serving import contact_file_response


def _organisation(request: HttpRequest) -> Organisation:
    return request.organisation  # type: ignore[attr-defined]


def _contact(request: HttpRequest, contact_id: int) -> Contact:
    try:
        return selectors.contact_for_files(
            organisation=_organisation(request), contact_id=contact_id
        )
    except Contact.DoesNotExist:
        raise Http404("No such contact.") from None


def _file(request: HttpRequest, contact_id: int, file_id: int) -> ContactFile:
    try:
        return selectors.contact_file_get(
            organisation=_organisation(request), contact_id=contact_id, file_id=file_id
        )
    except ContactFile.DoesNotExist:
        raise Http404("No such file.") from None


def _back(contact: Contact) -> str:
    """The contact's page when the contacts UI is there, else this app's files page."""
    try:
        return reverse("contacts:detail", args=[contact.pk])
    except NoReverseMatch:
        return reverse("files:contact_files", args=[contact.pk])


def _panel(
    request: HttpRequest, contact: Contact, upload_form: ContactFileUploadForm | None = None
) -> dict[str, Any]:
    files = selectors.contact_file_list(organisation=_organisation(request), contact=contact)
    return {
        "contact": contact,
        "files": list(files),
        "can_edit": request_may(request, Perm.CONTACTS_EDIT),
        "upload_form": upload_form,
    }


@require(Perm.FILES_VIEW)
@require_GET
def contact_files(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    context = _panel(request, contact)
    access_log_record(
        organisation=_organisation(request),
        subject_type="contact",
        subject_id=contact.pk,
        what=["files"],
    )
    return render(request, "files/contact_files.html", context)


@upload_limit(max_bytes)
@require(Perm.CONTACTS_EDIT, Perm.FILES_VIEW)
@require_POST
def contact_file_upload(request: HttpRequest, contact_id: int) -> HttpResponseBase:
    contact = _contact(request, contact_id)
    form = ContactFileUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            contact_file_add(
                contact=contact,
                upload=form.cleaned_data["file"],
                kind=form.cleaned_data["kind"],
                uploaded_by=request.user,  # type: ignore[arg-type]
            )
        except ContactFileRefused as exc:
            form.add_error("file" if exc.field == "file" else None, str(exc))
        except OrganisationSuspended as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The file is attached."))
            return redirect(_back(contact))
    status = 409 if contact.is_restricted else 400
    return render(
        request, "files/contact_files.html", _panel(request, contact, form), status=status
    )


@require(Perm.FILES_VIEW)
@require_GET
def contact_file_download(request: HttpRequest, contact_id: int, file_id: int) -> HttpResponseBase:
    contact_file = _file(request, contact_id, file_id)
    form = DownloadPurposeForm(request.GET if "purpose" in request.GET else None)
    if not form.is_valid():
        status = 400 if form.is_bound else 200
        context = {"form": form, "contact_file": contact_file, "back": _back(contact_file.contact)}
        return render(request, "files/download_purpose.html", context, status=status)
    access_log_record(
        organisation=_organisation(request),
        subject_type="contact",
        subject_id=contact_file.contact_id,
        action=AccessAction.DOWNLOAD,
        what=[f"file:{contact_file.pk}"],
        purpose=form.cleaned_data["purpose"],
    )
    return contact_file_response(contact_file)


@require(Perm.CONTACTS_EDIT, Perm.FILES_VIEW)
@require_http_methods(["GET", "POST"])
def contact_file_remove(request: HttpRequest, contact_id: int, file_id: int) -> HttpResponse:
    contact_file = _file(request, contact_id, file_id)
    back = _back(contact_file.contact)
    error = ""
    if request.method == "POST":
        try:
            contact_file_delete(contact_file=contact_file)
        except (ContactFileRefused, OrganisationSuspended) as exc:
            error = str(exc)
        else:
            messages.success(request, _("The file is deleted."))
            return redirect(back)
    context = {"contact_file": contact_file, "back": back, "error": error}
    return render(request, "files/delete.html", context, status=409 if error else 200)
