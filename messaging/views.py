"""Staff pages for messaging (MSG-2, MSG-3, MSG-6, CON-7): templates with their checks and a
preview that shows what an SMS costs, the message log per organisation and per contact, one
message's record and timeline, and a one-off transactional message from a contact's page.

The log and a message's record show what happened (channel, kind, status, times, legal basis,
provider codes), never what was said: the content is one click further, on a page that writes an
access-log row for the contact (CNT-3). Pages that name a contact log that too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from carely.audit.access_log import access_log_record
from carely.orgs.permissions import request_may, require
from carely.orgs.roles import Perm
from consent.links import public_url
from contacts.models import Contact
from contacts.selectors import contact_get
from messaging import templating
from messaging.forms import (
    MarketingCapForm,
    MessageFilterForm,
    PreviewForm,
    StaffMessageForm,
    TemplateForm,
)
from messaging.frequency_cap import marketing_cap_set, marketing_caps
from messaging.inbound import inbound_list
from messaging.models import Channel, Kind, Message, MessageEvent, MessageTemplate
from messaging.receipts import MessagingOptions
from messaging.segments import SmsEncoding, sms_encoding, transliterate
from messaging.services import (
    MessageInvalid,
    MessageRefused,
    _text_links_tracked,
    api_free_text_set,
    message_enqueue,
    provider_account_for,
    sms_opt_out_line,
    sms_replies_reach_us,
    template_save,
)

PAGE_SIZE = 50
SUBJECT = "contact"
CONTENT_FIELDS = ("subject", "body", "html_body", "to_address")
# What a preview with sample data fills in for the built-in placeholders.
SAMPLE = {"first_name": "Ana", "last_name": "Novak"}
# An unsubscribe link as long as a real one (a signed token), so the part count is honest.
SAMPLE_UNSUBSCRIBE_PATH = "/u/" + "x" * 86 + "/"


def _organisation(request: HttpRequest) -> Any:
    return getattr(request, "organisation", None)


def _messages(request: HttpRequest) -> QuerySet[Message]:
    return Message.objects.for_organisation(_organisation(request))


def _templates(request: HttpRequest) -> QuerySet[MessageTemplate]:
    return MessageTemplate.objects.for_organisation(_organisation(request))


def _log_contact(request: HttpRequest, contact_id: int, what: tuple[str, ...] | list[str]) -> None:
    access_log_record(
        organisation=_organisation(request), subject_type=SUBJECT, subject_id=contact_id, what=what
    )


def _filtered(request: HttpRequest, messages: QuerySet[Message]) -> dict[str, Any]:
    form = MessageFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        messages = messages.none()  # never everything in place of what was asked for
    elif form.is_bound:
        messages = form.apply(messages)
    page = Paginator(messages.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return {"form": form, "page": page, "rows": list(page.object_list), "query": query.urlencode()}


# --- the log ------------------------------------------------------------------------------------
@require(Perm.MESSAGES_VIEW)
def message_log(request: HttpRequest) -> HttpResponse:
    context = _filtered(request, _messages(request))
    return render(request, "messaging/message_log.html", context)


@require(Perm.MESSAGES_VIEW)
def contact_messages(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = contact_get(organisation=_organisation(request), contact_id=contact_id)
    _log_contact(request, contact.pk, ("first_name", "last_name", "messages"))
    context = _filtered(request, _messages(request).filter(contact=contact))
    context.update(
        contact=contact,
        inbound=list(inbound_list(organisation=_organisation(request), contact_id=contact.pk)[:20]),
        can_send=request_may(request, Perm.MESSAGES_SEND),
    )
    return render(request, "messaging/contact_messages.html", context)


@require(Perm.MESSAGES_VIEW)
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(_messages(request).select_related("template"), pk=message_id)
    events = MessageEvent.objects.filter(message=message).order_by("at", "pk")
    return render(
        request, "messaging/message_detail.html", {"message": message, "events": list(events)}
    )


@require(Perm.MESSAGES_VIEW)
def message_content(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(_messages(request), pk=message_id)
    if message.contact_id is not None:
        _log_contact(request, message.contact_id, [f"message:{message.pk}", *CONTENT_FIELDS])
    return render(request, "messaging/message_content.html", {"message": message})


# --- templates ----------------------------------------------------------------------------------
@require(Perm.MESSAGES_VIEW)
def template_list(request: HttpRequest) -> HttpResponse:
    current = _templates(request).filter(retired_at__isnull=True).order_by("name", "channel")
    context = {
        "templates": list(current),
        "account": provider_account_for(_organisation(request)),
        "api_free_text": MessagingOptions.objects.filter(
            organisation=_organisation(request), api_free_text=True
        ).exists(),
        "can_edit": request_may(request, Perm.MESSAGES_SEND),
        "can_settings": request_may(request, Perm.ORG_SETTINGS),
    }
    return render(request, "messaging/template_list.html", context)


def _save(request: HttpRequest, form: TemplateForm) -> MessageTemplate | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        return template_save(
            organisation=_organisation(request),
            name=data["name"],
            kind=data["kind"],
            channel=data["channel"],
            language=data["language"].strip().lower(),
            body=data["body"],
            subject=data.get("subject") or "",
            html_body=data.get("html_body") or "",
            variables=form.variable_names(),
            created_by=request.user,  # type: ignore[arg-type]
        )
    except MessageInvalid as exc:
        for problem in exc.problems:
            form.add_error(None, problem)
        return None


@require(Perm.MESSAGES_SEND)
def template_create(request: HttpRequest) -> HttpResponse:
    form = TemplateForm(request.POST if request.method == "POST" else None)
    template = _save(request, form) if request.method == "POST" else None
    if template is not None:
        flash.success(request, _("Template saved as version %(v)s.") % {"v": template.version})
        return redirect("messaging:template_detail", template.pk)
    return render(request, "messaging/template_form.html", {"form": form, "base": None})


@require(Perm.MESSAGES_SEND)
def template_new_version(request: HttpRequest, template_id: int) -> HttpResponse:
    base = get_object_or_404(_templates(request), pk=template_id)
    fixed = {"name": base.name, "channel": base.channel, "language": base.language}
    if request.method == "POST":
        # Name, channel and language identify the template: a new version keeps them.
        form = TemplateForm({**request.POST.dict(), **fixed})
        template = _save(request, form)
        if template is not None:
            flash.success(request, _("Version %(v)s saved.") % {"v": template.version})
            return redirect("messaging:template_detail", template.pk)
    else:
        form = TemplateForm(
            initial={
                **fixed,
                "kind": base.kind,
                "subject": base.subject,
                "body": base.body,
                "html_body": base.html_body,
                "variables": ", ".join(base.variables),
            }
        )
    for name in fixed:
        form.fields[name].disabled = True
    return render(request, "messaging/template_form.html", {"form": form, "base": base})


@dataclass
class Preview:
    subject: str = ""
    body: str = ""
    problems: list[str] | None = None
    encoding: SmsEncoding | None = None
    transliterated: SmsEncoding | None = None  # what switching transliteration on would give
    transliteration_on: bool = False


def template_preview(
    template: MessageTemplate,
    values: dict[str, str],
    *,
    organisation: Any,
    contact: Contact | None = None,
    tracked_link: str | None = None,
) -> Preview:
    """The text as a message would carry it: placeholders filled, the opt-out line added to
    marketing SMS (as enqueue adds it), the organisation's transliteration applied, and for SMS
    the encoding and part count (messaging.segments).

    ``tracked_link``: a campaign's links go out through the click redirect; the preview shows
    this sample of it in their place, so the part count is the one the campaign pays for."""
    marketing = template.kind == Kind.MARKETING
    builtins = {
        "first_name": contact.first_name if contact else SAMPLE["first_name"],
        "last_name": contact.last_name if contact else SAMPLE["last_name"],
        "organisation_name": organisation.name,
    }
    url = public_url(SAMPLE_UNSUBSCRIBE_PATH)
    if marketing:
        builtins["unsubscribe_url"] = url
    try:
        parsed = [templating.parse(t) for t in (template.subject, template.body)]
        used = {n for p in parsed for n in p.names}
        templating.values_check(values, used)
        subject, body = (templating.render(p, {**builtins, **values}) for p in parsed)
    except templating.TemplateError as exc:
        return Preview(problems=exc.problems)
    if tracked_link and marketing:
        sample = tracked_link
        body = _text_links_tracked(body, contact, url, lambda _c, _u: sample)  # type: ignore[arg-type]
    preview = Preview(subject=subject, body=body)
    if template.channel != Channel.SMS:
        return preview
    account = provider_account_for(organisation)
    replies = sms_replies_reach_us(account, template.channel)
    if marketing and "unsubscribe_url" not in used:
        language = ((contact.preferred_language if contact else "") or template.language or "en")[
            :2
        ]
        preview.body = f"{body}\n{sms_opt_out_line(language=language, url=url, replies=replies)}"
    preview.transliteration_on = account.sms_transliterate
    if account.sms_transliterate:
        preview.body = transliterate(preview.body)
    preview.encoding = sms_encoding(preview.body)
    if not account.sms_transliterate and preview.encoding.non_gsm:
        preview.transliterated = sms_encoding(transliterate(preview.body))
    return preview


@require(Perm.MESSAGES_VIEW)
def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(_templates(request).select_related("created_by"), pk=template_id)
    form = PreviewForm(request.GET or None)
    contact = None
    values: dict[str, str] = {}
    if form.is_bound and form.is_valid():
        values = form.values()
        if form.cleaned_data.get("contact"):
            contact = (
                Contact.objects.for_organisation(_organisation(request))
                .filter(pk=form.cleaned_data["contact"])
                .first()
            )
            if contact is None:
                form.add_error("contact", _("No contact with that number in this organisation."))
            else:
                _log_contact(request, contact.pk, ("first_name", "last_name", "preferred_language"))
    defaults = {n: "" for n in template.variables}
    preview = template_preview(
        template, values, organisation=_organisation(request), contact=contact
    )
    versions = _templates(request).filter(
        name=template.name, channel=template.channel, language=template.language
    )
    context = {
        "template": template,
        "form": form,
        "preview": preview,
        "sample_hint": "\n".join(f"{n}=" for n in defaults),
        "versions": list(versions.order_by("-version")),
        "can_edit": request_may(request, Perm.MESSAGES_SEND),
    }
    return render(request, "messaging/template_detail.html", context)


@require(Perm.ORG_SETTINGS)
@require_POST
def transliteration_set(request: HttpRequest) -> HttpResponse:
    account = provider_account_for(_organisation(request))
    account.sms_transliterate = request.POST.get("sms_transliterate") == "on"
    account.save(update_fields=["sms_transliterate"])
    if account.sms_transliterate:
        flash.success(request, _("SMS texts now replace č, š, ž, ć, đ with c, s, z, c, d."))
    else:
        flash.success(request, _("SMS texts are sent with č, š, ž as written (UCS-2)."))
    back = request.POST.get("next", "")
    if back.startswith("/messages/") and "//" not in back:
        return redirect(back)
    return redirect("messaging:template_list")


@require(Perm.ORG_SETTINGS)
@require_POST
def api_free_text_update(request: HttpRequest) -> HttpResponse:
    allowed = request.POST.get("api_free_text") == "on"
    api_free_text_set(organisation=_organisation(request), allowed=allowed)
    if allowed:
        flash.success(request, _("The API may now send texts written by your practice system."))
    else:
        flash.success(request, _("The API now sends messages from templates only."))
    return redirect("messaging:template_list")


@require(Perm.ORG_SETTINGS)
def marketing_cap_update(request: HttpRequest) -> HttpResponse:
    """The frequency cap on marketing messages (MSG-4): admins only, audited by the service."""
    organisation = _organisation(request)
    cap = marketing_caps([organisation.pk])[organisation.pk]
    form = MarketingCapForm(
        request.POST if request.method == "POST" else None,
        initial={"count": cap.count, "days": cap.days},
    )
    if request.method == "POST" and form.is_valid():
        count, days = form.cleaned_data["count"], form.cleaned_data["days"]
        marketing_cap_set(organisation=organisation, count=count, days=days)
        if count:
            flash.success(
                request,
                _("At most %(count)s marketing messages per person in any %(days)s days.")
                % {"count": count, "days": days},
            )
        else:
            flash.success(request, _("Marketing messages are no longer limited per person."))
        return redirect("messaging:frequency_cap")
    return render(request, "messaging/frequency_cap.html", {"form": form, "cap": cap})


# --- one-off message from a contact's page -------------------------------------------------------
@require(Perm.MESSAGES_SEND)
def contact_send(request: HttpRequest, contact_id: int) -> HttpResponse:
    organisation = _organisation(request)
    contact = contact_get(organisation=organisation, contact_id=contact_id)
    _log_contact(request, contact.pk, ("first_name", "last_name"))
    templates = _templates(request).filter(retired_at__isnull=True, kind=Kind.TRANSACTIONAL)
    form = StaffMessageForm(
        request.POST if request.method == "POST" else None, templates=templates.order_by("name")
    )
    refusals: list[str] = []
    if request.method == "POST" and form.is_valid():
        template = form.cleaned_data["template"]
        try:
            message = message_enqueue(
                organisation=organisation,
                contact=contact,
                channel=template.channel,
                kind=Kind.TRANSACTIONAL,
                purpose=form.cleaned_data["purpose"],
                template=template,
                variables=form.values(),
                dedupe_key=f"staff:{uuid.uuid4().hex}",
                created_by=request.user,  # type: ignore[arg-type]
            )
        except MessageInvalid as exc:
            for problem in exc.problems:
                form.add_error("variables", problem)
        except MessageRefused as exc:
            refusals = exc.reasons
        else:
            flash.success(
                request,
                _("Message queued (%(channel)s), legal basis: %(basis)s.")
                % {"channel": message.get_channel_display(), "basis": message.legal_basis},
            )
            return redirect("messaging:message_detail", message.pk)
    context = {
        "contact": contact,
        "form": form,
        "refusals": [(code, REFUSAL_TEXT.get(code, code)) for code in refusals],
        "now": timezone.now(),
    }
    return render(request, "messaging/contact_send.html", context)


# The eligibility decision's codes in words for staff (consent.eligibility.Reason).
REFUSAL_TEXT: dict[str, Any] = {
    "no_consent": _lazy("no consent for this purpose and channel"),
    "withdrawn": _lazy("consent was withdrawn"),
    "lapsed": _lazy("consent lapsed (two years without a relationship)"),
    "objection": _lazy("the person objected"),
    "suppressed": _lazy("the address is on the suppression list"),
    "restricted": _lazy("the contact is restricted (stored only)"),
    "erased": _lazy("the contact was erased"),
    "minor_without_guardian_consent": _lazy("a minor without a parent's or guardian's consent"),
    "no_address": _lazy("no address for this channel"),
    "no_relationship": _lazy("no live relationship with the clinic"),
    "organisation_suspended": _lazy("the organisation is suspended"),
    "whatsapp_session_closed": _lazy(
        "WhatsApp free text only within 24 hours of the person's last message"
    ),
    "frequency_cap": _lazy("the person already had the most marketing messages allowed lately"),
}
