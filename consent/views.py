"""Staff pages for one contact's consent (CON-1, CON-6, CON-7, DSR-11): history, recording,
objections, the DPO's grounds, receipts.

Thin: the request in, one selector or service call, a page out. Viewing writes an access-log
row, a receipt download one with its purpose (CNT-3), as the contact pages do. The contact is
looked up in the person's organisation, so another clinic's id answers 404.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from carely.audit.access_log import access_log_record
from carely.audit.models import AccessAction
from carely.orgs.permissions import request_may, require
from carely.orgs.roles import Perm
from carely.orgs.selectors import membership_list
from carely.orgs.suspension import OrganisationSuspended
from consent import selectors
from consent.forms import (
    CHANNEL_LABELS,
    ConsentRecordForm,
    GroundsForm,
    ObjectionForm,
    ReceiptPurposeForm,
)
from consent.models import Channel, ObjectionKind, Source, Status
from consent.receipt import (
    RECEIPT_FIELDS,
    consent_evidence,
    receipt_document,
    receipt_pdf,
    recorded_by,
)
from consent.services import (
    ConsentInvalid,
    ContactRestricted,
    GroundsRefused,
    consent_record_wording,
    objection_grounds_record,
    objection_record,
)
from contacts.forms import RESTRICTED_EXPORT_PURPOSES
from contacts.models import Contact
from contacts.selectors import contact_get

SUBJECT = "contact"
HISTORY_FIELDS = ("first_name", "last_name", *RECEIPT_FIELDS)
NAME_FIELDS = ("first_name", "last_name")


def _organisation(request: HttpRequest) -> Any:
    return getattr(request, "organisation", None)


def _contact(request: HttpRequest, contact_id: int) -> Contact:
    return contact_get(organisation=_organisation(request), contact_id=contact_id)


def _posted(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def _log(request: HttpRequest, contact: Contact, what: tuple[str, ...]) -> None:
    access_log_record(
        organisation=_organisation(request), subject_type=SUBJECT, subject_id=contact.pk, what=what
    )


def _labels() -> dict[str, dict[str, str]]:
    """Code values in words, in the page's language, for the page and the PDF."""
    return {
        "status": {Status.GIVEN: _("given"), Status.WITHDRAWN: _("withdrawn")},
        "channel": {
            Channel.ALL: _("all channels"),
            **{k: str(v) for k, v in CHANNEL_LABELS.items()},
        },
        "source": {
            Source.FORM: _("web form"),
            Source.API: _("practice system (API)"),
            Source.STAFF: _("recorded by staff"),
            Source.IMPORT: _("import"),
            Source.UNSUBSCRIBE_LINK: _("unsubscribe link"),
            Source.STOP_REPLY: _("STOP reply"),
            Source.PREFERENCE_PAGE: _("preference page"),
            Source.GUARDIAN: _("parent or guardian"),
            Source.SYSTEM: _("system"),
        },
    }


def _who(entry: Any, names: dict[int, str]) -> str:
    by = recorded_by(entry)
    if by["type"] == "staff":
        return names.get(by["user_id"]) or _("a former member (#%(id)s)") % {"id": by["user_id"]}
    if by["type"] == "api_key":
        return _("API key #%(id)s") % {"id": by["api_key_id"]}
    if by["type"] == "system":
        return _("the system")
    return _("the person")


@require(Perm.CONTACTS_VIEW)
def consent_history(request: HttpRequest, contact_id: int) -> HttpResponse:
    organisation = _organisation(request)
    contact = _contact(request, contact_id)
    evidence = consent_evidence(organisation=organisation, contact=contact)
    _log(request, contact, HISTORY_FIELDS)
    names = {
        m.user_id: m.user.full_name or m.user.email
        for m in membership_list(organisation=organisation)
    }
    labels = _labels()
    rows = [
        {
            "entry": e,
            "channel": labels["channel"].get(e.channel, e.channel),
            "status": labels["status"].get(e.status, e.status),
            "source": labels["source"].get(e.source, e.source),
            "who": _who(e, names),
        }
        for e in reversed(evidence.entries)  # newest first: what staff look for
    ]
    state = [
        {
            "purpose": row.purpose,
            "cells": [
                {**cell, "label": labels["status"].get(cell["status"], "")} for cell in row.cells
            ],
        }
        for row in evidence.state
    ]
    context = {
        "contact": contact,
        "evidence": evidence,
        "rows": rows,
        "state": state,
        "channels": [labels["channel"][c] for c in ("sms", "email", "whatsapp")],
        "can_record": request_may(request, Perm.CONSENT_RECORD),
        "can_decide_grounds": request_may(request, Perm.DSR_REVIEW),
        "can_receipt": _may_receipt(request),
    }
    return render(request, "consent/history.html", context)


def _form_page(
    request: HttpRequest, contact: Contact, template: str, form: Any, **extra: Any
) -> HttpResponse:
    if request.method == "GET":
        _log(request, contact, NAME_FIELDS)
    status = 400 if form.errors else 200
    return render(request, template, {"contact": contact, "form": form, **extra}, status=status)


@require(Perm.CONSENT_RECORD)
def consent_record_view(request: HttpRequest, contact_id: int) -> HttpResponse:
    organisation = _organisation(request)
    contact = _contact(request, contact_id)
    form = ConsentRecordForm(
        _posted(request), wordings=selectors.wording_list(organisation=organisation)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            consent_record_wording(
                contact=contact,
                wording=data["wording"],
                channel=data["channel"],
                status=data["status"],
                source=Source.STAFF,
                note=data["note"],
            )
        except ConsentInvalid as exc:
            form.add_errors(exc.errors)
        except ContactRestricted as exc:
            form.add_error(None, str(exc))
        except OrganisationSuspended as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The consent entry was recorded."))
            return redirect("consent:history", contact_id=contact.pk)
    return _form_page(request, contact, "consent/record.html", form)


@require(Perm.CONSENT_RECORD)
def objection_record_view(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    form = ObjectionForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            objection_record(
                contact=contact,
                kind=form.cleaned_data["kind"],
                source=Source.STAFF,
                note=form.cleaned_data["note"],
            )
        except ConsentInvalid as exc:
            form.add_errors(exc.errors)
        else:
            if form.cleaned_data["kind"] == ObjectionKind.DIRECT_MARKETING:
                done = _(
                    "The objection was recorded. No marketing will be sent to this person's "
                    "addresses again, even if the record is erased and created anew."
                )
            else:
                done = _(
                    "The objection was recorded. Reminders and other messages on legitimate "
                    "interest stop until the data protection officer records compelling grounds."
                )
            messages.success(request, done)
            return redirect("consent:history", contact_id=contact.pk)
    return _form_page(request, contact, "consent/objection.html", form)


@require(Perm.CONTACTS_VIEW, Perm.DSR_REVIEW)
def objection_grounds_view(
    request: HttpRequest, contact_id: int, objection_id: int
) -> HttpResponse:
    organisation = _organisation(request)
    contact = _contact(request, contact_id)
    objection = (
        selectors.objection_list(organisation=organisation, contact_id=contact.pk)
        .filter(pk=objection_id)
        .first()
    )
    if objection is None:
        raise Http404("No such objection for this contact")
    form = GroundsForm(_posted(request))
    user: Any = request.user  # signed in: @require sent anyone else to the login page
    if request.method == "POST" and form.is_valid():
        try:
            objection_grounds_record(
                objection=objection, reason=form.cleaned_data["reason"], recorded_by=user
            )
        except (GroundsRefused, OrganisationSuspended) as exc:
            form.add_error("reason", str(exc))
        else:
            messages.success(request, _("The grounds were recorded; messages may continue."))
            return redirect("consent:history", contact_id=contact.pk)
    return _form_page(request, contact, "consent/grounds.html", form, objection=objection)


# --- receipts -----------------------------------------------------------------------------------


def _may_receipt(request: HttpRequest) -> bool:
    # Whoever records consent may hand the person proof of it; whoever exports records may too.
    return request_may(request, Perm.CONSENT_RECORD) or request_may(request, Perm.CONTACTS_EXPORT)


def _receipt(request: HttpRequest, contact_id: int, kind: str) -> HttpResponse:
    if not _may_receipt(request):
        raise PermissionDenied("Your role does not allow this.")
    organisation = _organisation(request)
    contact = _contact(request, contact_id)
    form = ReceiptPurposeForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        purpose = form.cleaned_data["purpose"]
        if contact.is_restricted and purpose not in RESTRICTED_EXPORT_PURPOSES:
            form.add_error(
                "purpose",
                _(
                    "This contact is restricted, so its receipt may be downloaded only to "
                    "answer a data-subject request or for a legal claim."
                ),
            )
        else:
            evidence = consent_evidence(organisation=organisation, contact=contact)
            access_log_record(
                organisation=organisation,
                subject_type=SUBJECT,
                subject_id=contact.pk,
                action=AccessAction.DOWNLOAD,
                what=RECEIPT_FIELDS,
                purpose=purpose,
            )
            stamp = timezone.localdate().isoformat()
            name = f"consent-receipt-{contact.pk}-{stamp}.{kind}"
            if kind == "json":
                body: bytes | str = json.dumps(
                    receipt_document(evidence), ensure_ascii=False, indent=2
                )
                response = HttpResponse(body, content_type="application/json; charset=utf-8")
            else:
                response = HttpResponse(
                    receipt_pdf(evidence, _labels()), content_type="application/pdf"
                )
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
    return _form_page(
        request,
        contact,
        "consent/receipt.html",
        form,
        kind=kind,
        restricted_purposes=RESTRICTED_EXPORT_PURPOSES,
    )


@require(Perm.CONTACTS_VIEW)
def receipt_json(request: HttpRequest, contact_id: int) -> HttpResponse:
    return _receipt(request, contact_id, "json")


@require(Perm.CONTACTS_VIEW)
def receipt_pdf_view(request: HttpRequest, contact_id: int) -> HttpResponse:
    return _receipt(request, contact_id, "pdf")
