"""Staff pages for the patient register (CNT-1, CNT-3, CNT-4, CNT-6, DSR-8).

Thin: the request in, one selector or service call, a page out. Every page that shows a contact's
personal data writes an access-log row naming the fields shown (CNT-3).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from carely.audit.access_log import access_log_record, access_log_record_many
from carely.audit.models import AccessAction
from carely.orgs.permissions import request_may, require
from carely.orgs.roles import Perm
from carely.orgs.selectors import membership_list
from carely.privacy.registry import Subject, registry
from contacts import selectors
from contacts.forms import (
    FIELD_LABELS,
    RESTRICTED_EXPORT_PURPOSES,
    ContactEditForm,
    ContactForm,
    ContactSearchForm,
    ExportPurposeForm,
    LiftRestrictionForm,
    RestrictForm,
    StatementForm,
)
from contacts.models import Contact, SourceKind
from contacts.services import (
    ContactInvalid,
    ContactRestricted,
    RestrictionError,
    contact_create,
    contact_lift_restriction,
    contact_restrict,
    contact_statement_add,
    contact_tags_set,
    contact_update,
    tag_names_clean,
)
from contacts.validation import contact_clean, contact_state

PAGE_SIZE = 50
SUBJECT = "contact"

# What each page shows of a person, as recorded in the access log.
LIST_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "external_id",
    "relationship_status",
    "is_minor",
    "restricted",
    "tags",
)
FORM_FIELDS = tuple(ContactForm.base_fields)
DETAIL_FIELDS = (
    *FORM_FIELDS,
    "source_kind",
    "is_minor",
    "restriction",
    "history",
    "supplementary_statements",
)
NAME_FIELDS = ("first_name", "last_name")


def _organisation(request: HttpRequest) -> Any:
    return getattr(request, "organisation", None)


def _contact(request: HttpRequest, contact_id: int) -> Contact:
    return selectors.contact_get(organisation=_organisation(request), contact_id=contact_id)


def _posted(request: HttpRequest) -> Any:
    # Not ``request.POST or None``: an empty POST must still be a bound (and invalid) form.
    return request.POST if request.method == "POST" else None


def _log_view(request: HttpRequest, contact: Contact, what: Iterable[str]) -> None:
    access_log_record(
        organisation=_organisation(request), subject_type=SUBJECT, subject_id=contact.pk, what=what
    )


@require(Perm.CONTACTS_VIEW)
def contact_list(request: HttpRequest) -> HttpResponse:
    form = ContactSearchForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    contacts = selectors.contact_list(
        organisation=_organisation(request),
        search=filters.get("q", ""),
        relationship_status=filters.get("relationship_status", ""),
        tag=filters.get("tag", ""),
    )
    if form.is_bound and not form.is_valid():
        contacts = contacts.none()  # never the whole register in place of what was asked for
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    access_log_record_many(
        organisation=_organisation(request),
        subject_type=SUBJECT,
        subject_ids=[c.pk for c in shown],
        what=LIST_FIELDS,
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "contacts": shown,
        "query": query.urlencode(),
        "searching": bool(filters.get("q")),
        "filtered": bool(
            filters.get("q") or filters.get("relationship_status") or filters.get("tag")
        ),
        "can_edit": request_may(request, Perm.CONTACTS_EDIT),
    }
    return render(request, "contacts/contact_list.html", context)


def _actor_names(request: HttpRequest) -> dict[str, str]:
    return {
        str(m.user_id): m.user.full_name or m.user.email
        for m in membership_list(organisation=_organisation(request))
    }


def _shown(value: Any) -> Any:
    """A history value as the page shows it: tags as "a, b", not a Python list."""
    return ", ".join(value) if isinstance(value, list) else value


def _history_rows(request: HttpRequest, contact: Contact) -> list[dict[str, Any]]:
    names = _actor_names(request)
    rows = []
    for entry in selectors.contact_history(contact=contact):
        change = entry.change
        if change.actor_type == "user":
            actor = names.get(
                change.actor_id, _("a former member (#%(id)s)") % {"id": change.actor_id}
            )
        elif change.actor_type == "api_key":
            actor = _("API key #%(id)s") % {"id": change.actor_id}
        else:
            actor = f"{change.actor_type} {change.actor_id}".strip()
        rows.append(
            {
                "entry": entry,
                "change": change,
                "actor": actor,
                "fields": [
                    {
                        "label": FIELD_LABELS.get(f.name, f.name),
                        "before": _shown(f.before),
                        "after": _shown(f.after),
                    }
                    for f in entry.fields
                ],
                "lift": change.changed() if change.kind == "restriction_lifted" else {},
            }
        )
    return rows


def _files_panel(request: HttpRequest, contact: Contact) -> dict[str, Any] | None:
    """The files helper's panel, when that app is installed; the page works without it."""
    if not request_may(request, Perm.FILES_VIEW):
        return None
    try:
        get_template("files/contact_files_panel.html")
        contact_file_list = import_module("files.selectors").contact_file_list
    except (TemplateDoesNotExist, ImportError, AttributeError):
        return None
    files = list(contact_file_list(organisation=_organisation(request), contact=contact))
    return {"files": files}


@require(Perm.CONTACTS_VIEW)
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    history = _history_rows(request, contact)
    files_panel = _files_panel(request, contact)
    _log_view(request, contact, (*DETAIL_FIELDS, "files") if files_panel else DETAIL_FIELDS)
    context = {
        "contact": contact,
        "tags": selectors.contact_tag_names(contact),
        "history": [row for row in history if not row["entry"].is_statement],
        "statements": [row for row in history if row["entry"].is_statement],
        "files_panel": files_panel,
        "can_edit": request_may(request, Perm.CONTACTS_EDIT),
        "can_export": request_may(request, Perm.CONTACTS_EXPORT),
        "can_view_messages": request_may(request, Perm.MESSAGES_VIEW),
    }
    if files_panel is not None:
        context.update(files_panel)
    return render(request, "contacts/contact_detail.html", context)


def _add_tag_errors(form: ContactForm) -> None:
    """The tags' problems too, when the service stopped at another field first, so a
    receptionist fixes everything in one go."""
    if "tags" in form.errors:
        return
    try:
        tag_names_clean(form.tag_names())
    except ContactInvalid as exc:
        form.add_errors(exc.errors)


def _check_other_fields(form: ContactForm, region: str, current: dict[str, Any] | None) -> None:
    """When the form itself is invalid, still show the service's words for the other fields,
    so a receptionist fixes everything in one go."""
    data = {k: v for k, v in getattr(form, "cleaned_data", {}).items() if k in FORM_FIELDS}
    data.pop("guardian", None)
    errors: dict[str, list[str]] = {}
    try:
        contact_clean(data, region=region, current=current)
    except ContactInvalid as exc:
        errors.update(exc.errors)
    try:
        tag_names_clean(form.tag_names() if "tags" in data else [])
    except ContactInvalid as exc:
        errors.update(exc.errors)
    form.add_errors({k: v for k, v in errors.items() if k not in form.errors})


@require(Perm.CONTACTS_EDIT)
def contact_new(request: HttpRequest) -> HttpResponse:
    organisation = _organisation(request)
    form = ContactForm(_posted(request))
    if request.method == "POST":
        if form.is_valid():
            try:
                with transaction.atomic():  # a bad tag leaves no contact behind
                    contact = contact_create(
                        organisation=organisation,
                        data=form.contact_data(),
                        source_kind=SourceKind.STAFF,
                    )
                    tags = form.tag_names()
                    if tags:
                        contact_tags_set(contact=contact, names=tags, record_change=False)
            except ContactInvalid as exc:
                form.add_errors(exc.errors)
                _add_tag_errors(form)
            else:
                messages.success(request, _("The contact was added."))
                return redirect("contacts:detail", contact_id=contact.pk)
        else:
            _check_other_fields(form, organisation.default_phone_region, None)
    status = 400 if form.errors else 200
    return render(request, "contacts/contact_form.html", {"form": form}, status=status)


def _initial(contact: Contact) -> dict[str, Any]:
    initial = {
        name: getattr(contact, name) for name in FORM_FIELDS if name not in ("guardian", "tags")
    }
    initial["guardian"] = contact.guardian_id or ""
    initial["tags"] = ", ".join(selectors.contact_tag_names(contact))
    return {k: ("" if v is None else v) for k, v in initial.items()}


def _restricted_page(request: HttpRequest, contact: Contact) -> HttpResponse:
    return render(request, "contacts/contact_restricted.html", {"contact": contact}, status=409)


@require(Perm.CONTACTS_EDIT)
def contact_edit(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    if contact.is_restricted:
        return _restricted_page(request, contact)
    form = ContactEditForm(_posted(request), initial=_initial(contact))
    if request.method == "POST":
        if form.is_valid():
            data = form.contact_data()
            reason = data.pop("reason")
            try:
                with transaction.atomic():
                    changes = contact_update(contact=contact, data=data, reason=reason)
                    tag_changes = (
                        contact_tags_set(contact=contact, names=form.tag_names(), reason=reason)
                        if "tags" in form.data  # a post without the field leaves tags alone
                        else {}
                    )
            except ContactInvalid as exc:
                form.add_errors(exc.errors)
                _add_tag_errors(form)
            except ContactRestricted:
                return _restricted_page(request, contact)
            else:
                if changes or tag_changes:
                    messages.success(request, _("The changes were saved with your reason."))
                else:
                    messages.info(request, _("Nothing was changed."))
                return redirect("contacts:detail", contact_id=contact.pk)
        else:
            region = contact.organisation.default_phone_region
            _check_other_fields(form, region, contact_state(contact))
    else:
        _log_view(request, contact, FORM_FIELDS)
    status = 400 if form.errors else 200
    context = {"form": form, "contact": contact}
    return render(request, "contacts/contact_form.html", context, status=status)


def _small_form_page(
    request: HttpRequest, contact: Contact, template: str, form: Any, **extra: Any
) -> HttpResponse:
    if request.method == "GET":
        _log_view(request, contact, NAME_FIELDS)
    status = 400 if form.errors else 200
    return render(request, template, {"contact": contact, "form": form, **extra}, status=status)


@require(Perm.CONTACTS_EDIT)
def contact_restrict_view(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    if contact.is_restricted:
        messages.info(request, _("This contact is already restricted."))
        return redirect("contacts:detail", contact_id=contact.pk)
    form = RestrictForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            contact_restrict(contact=contact, reason=form.cleaned_data["reason"])
        except RestrictionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The contact is restricted: it is now only stored."))
            return redirect("contacts:detail", contact_id=contact.pk)
    return _small_form_page(request, contact, "contacts/contact_restrict.html", form)


@require(Perm.CONTACTS_EDIT)
def contact_lift_restriction_view(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    if not contact.is_restricted:
        messages.info(request, _("This contact is not restricted."))
        return redirect("contacts:detail", contact_id=contact.pk)
    form = LiftRestrictionForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            contact_lift_restriction(
                contact=contact,
                informed_at=form.cleaned_data["informed_at"],
                informed_how=form.cleaned_data["informed_how"],
            )
        except RestrictionError as exc:
            form.add_error("informed_at" if "future" in str(exc) else None, str(exc))
        else:
            messages.success(request, _("The restriction was lifted."))
            return redirect("contacts:detail", contact_id=contact.pk)
    return _small_form_page(
        request, contact, "contacts/contact_lift_restriction.html", form, now=timezone.now()
    )


@require(Perm.CONTACTS_EDIT)
def contact_statement(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    form = StatementForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            contact_statement_add(contact=contact, statement=form.cleaned_data["statement"])
        except ContactInvalid as exc:
            form.add_errors(exc.errors)
        else:
            messages.success(request, _("The statement was added to the record."))
            return redirect("contacts:detail", contact_id=contact.pk)
    return _small_form_page(request, contact, "contacts/contact_statement.html", form)


def _exported_fields(document: dict[str, Any]) -> list[str]:
    """The columns that left the system, by model: what the access log says was exported."""
    fields: set[str] = set()
    for label, rows in (document.get("models") or {}).items():
        for row in rows:
            prefix = "" if label == "contacts.Contact" else f"{label}."
            fields.update(f"{prefix}{column}" for column in row)
    return sorted(fields)


@require(Perm.CONTACTS_EXPORT)
def contact_export(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    form = ExportPurposeForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        purpose = form.cleaned_data["purpose"]
        if contact.is_restricted and purpose not in RESTRICTED_EXPORT_PURPOSES:
            form.add_error(
                "purpose",
                _(
                    "This contact is restricted, so it may be exported only to answer a "
                    "data-subject request or for a legal claim."
                ),
            )
        else:
            organisation = _organisation(request)
            stream = io.StringIO()
            registry.export(Subject(SUBJECT, organisation.pk, contact.pk), stream, format="json")
            body = stream.getvalue()
            access_log_record(
                organisation=organisation,
                subject_type=SUBJECT,
                subject_id=contact.pk,
                action=AccessAction.EXPORT,
                what=_exported_fields(json.loads(body)),
                purpose=purpose,
            )
            response = HttpResponse(body, content_type="application/json; charset=utf-8")
            stamp = timezone.localdate().isoformat()
            name = f"contact-{contact.pk}-{stamp}.json"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
    return _small_form_page(
        request,
        contact,
        "contacts/contact_export.html",
        form,
        restricted_purposes=RESTRICTED_EXPORT_PURPOSES,
    )
