"""Telling the subject (DSR-3..DSR-5, DSR-13, issue 9 "Communication").

Each notice is a text in the subject's language (Slovenian or English), chosen by kind
(``dsr/notices/<kind>.<language>.txt``: the first line is the e-mail subject). Where it goes:

- the request says to answer by letter (or came by phone with no address): a ``DsrNotice`` with
  status ``staff_to_send``; the queue shows it until staff mark it sent;
- the subject is a confirmed contact who is still on file with an address for the reply
  channel: the messaging core, as a transactional message for the purpose
  ``data_subject_request`` (legal-obligation basis, ``consent.eligibility``), so it is
  dispatched, reported and retried like every other message;
- otherwise (not identified yet, a platform subject, or after an erasure): by e-mail through
  Django's mail backend (SES in production) to the address the requester gave. An SMS-only
  requester who is not a contact gets ``staff_to_send``.

A notice sent before the subject is verified says nothing about what we hold about them, so it
cannot tell a stranger whether someone is a patient. No notice text carries a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone

from dsr.models import (
    DataSubjectRequest,
    DsrNotice,
    NoticeKind,
    NoticeStatus,
    ReplyChannel,
    StepKind,
)
from dsr.steps import dsr_step_add

LANGUAGES = ("sl", "en")
PURPOSE = "data_subject_request"

COMMISSIONER = {
    "name_sl": "Informacijski pooblaščenec Republike Slovenije",
    "name_en": "Information Commissioner of the Republic of Slovenia",
    "address": "Dunajska cesta 22, 1000 Ljubljana, Slovenia",
    "email": "gp.ip@ip-rs.si",
    "phone": "+386 1 230 97 30",
    "web": "https://www.ip-rs.si",
}


@dataclass(frozen=True)
class ReplyAddress:
    """Where a notice goes when it cannot go through the messaging core (captured before an
    erasure removes the request's copy)."""

    email: str = ""
    phone: str = ""


def reply_address(request: DataSubjectRequest) -> ReplyAddress:
    return ReplyAddress(email=request.subject_email or "", phone=request.subject_phone or "")


def notice_language(request: DataSubjectRequest) -> str:
    return request.language if request.language in LANGUAGES else "sl"


def render_notice(
    request: DataSubjectRequest, kind: str, context: dict[str, Any]
) -> tuple[str, str]:
    language = notice_language(request)
    controller = request.organisation.name if request.organisation else "Carely PEP"
    template = get_template(f"dsr/notices/{kind}.{language}.txt")
    # Plain text: nothing is HTML-escaped ("Zdravje & Co" stays as written).
    body = template.template.render(  # type: ignore[attr-defined]
        Context(
            {
                "request": request,
                "controller": controller,
                "commissioner": COMMISSIONER,
                "type_label": _type_label(request.type, language),
                **context,
            },
            autoescape=False,
        )
    ).strip()
    subject, _, text = body.partition("\n")
    return subject.strip(), text.strip() + "\n"


_TYPE_LABELS = {
    "sl": {
        "access": "dostop do osebnih podatkov",
        "rectification": "popravek osebnih podatkov",
        "erasure": "izbris osebnih podatkov",
        "restriction": "omejitev obdelave",
        "portability": "prenosljivost podatkov",
        "objection": "ugovor obdelavi",
        "withdrawal": "preklic privolitve",
    },
    "en": {
        "access": "access to personal data",
        "rectification": "rectification of personal data",
        "erasure": "erasure of personal data",
        "restriction": "restriction of processing",
        "portability": "data portability",
        "objection": "objection to processing",
        "withdrawal": "withdrawal of consent",
    },
}


def _type_label(request_type: str, language: str) -> str:
    return _TYPE_LABELS[language].get(request_type, request_type)


def notice_send(
    request: DataSubjectRequest,
    kind: str,
    *,
    context: dict[str, Any] | None = None,
    address: ReplyAddress | None = None,
    contact_gone: bool = False,
) -> DsrNotice:
    """Send one notice and record it (a ``DsrNotice`` and a ``notice_sent`` step)."""
    subject, text = render_notice(request, kind, context or {})
    language = notice_language(request)
    address = address or reply_address(request)
    channel = request.reply_channel
    notice = DsrNotice(
        organisation_id=request.organisation_id,
        request=request,
        kind=kind,
        channel=channel,
        language=language,
        status=NoticeStatus.STAFF_TO_SEND,
    )
    if channel == ReplyChannel.LETTER:
        notice.detail = "Answer by letter: print the text from the request's page."
    else:
        _deliver(request, notice, subject, text, address, contact_gone=contact_gone)
    notice.save()
    dsr_step_add(
        request,
        StepKind.NOTICE_SENT,
        data={"notice": kind, "channel": notice.channel, "status": notice.status},
    )
    return notice


def _deliver(
    request: DataSubjectRequest,
    notice: DsrNotice,
    subject: str,
    text: str,
    address: ReplyAddress,
    *,
    contact_gone: bool,
) -> None:
    contact = None if contact_gone else request.contact
    organisation = request.organisation
    if contact is not None and organisation is not None:
        queued = _through_messaging(request, organisation, notice, subject, text, contact)
        if queued:
            return
    if notice.channel == ReplyChannel.EMAIL or (address.email and not address.phone):
        if not address.email:
            notice.status = NoticeStatus.STAFF_TO_SEND
            notice.detail = "No e-mail address was given: tell the subject by phone or letter."
            return
        notice.channel = ReplyChannel.EMAIL
        try:
            EmailMessage(
                subject=subject,
                body=text,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[address.email],
            ).send()
        except Exception as exc:  # the backend's own errors vary (SMTP, SES)
            notice.status = NoticeStatus.FAILED
            notice.detail = f"The e-mail could not be sent ({type(exc).__name__}); send it again."
            return
        notice.status = NoticeStatus.SENT
        notice.sent_at = timezone.now()
        return
    notice.status = NoticeStatus.STAFF_TO_SEND
    notice.detail = (
        "The subject is not a contact with this phone number on file, so no SMS can go through "
        "the messaging core: tell them by phone or letter and mark the notice sent."
    )


def _through_messaging(
    request: DataSubjectRequest,
    organisation: Any,
    notice: DsrNotice,
    subject: str,
    text: str,
    contact: Any,
) -> bool:
    from messaging.services import MessageInvalid, MessageRefused, message_enqueue

    channel = "sms" if notice.channel == ReplyChannel.SMS else "email"
    if not (contact.phone if channel == "sms" else contact.email):
        return False
    count = DsrNotice.objects.filter(request=request, kind=notice.kind).count()
    try:
        message = message_enqueue(
            organisation=organisation,
            contact=contact,
            channel=channel,
            kind="transactional",
            purpose=PURPOSE,
            text=text,
            subject="" if channel == "sms" else subject,
            dedupe_key=f"dsr:{request.reference}:{notice.kind}:{count + 1}",
        )
    except (MessageRefused, MessageInvalid) as exc:
        notice.detail = f"The messaging core refused it ({exc}); sent by e-mail instead."[:300]
        return False
    notice.status = NoticeStatus.QUEUED
    notice.message_id = message.pk
    notice.sent_at = timezone.now()
    return True


NOTICE_KINDS = tuple(NoticeKind.values)
