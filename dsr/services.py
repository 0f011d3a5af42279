"""The data-subject request workflow (DSR-1..DSR-14): every change to a request goes through here.

received -> (awaiting_verification | awaiting_information) -> verified -> decided -> executed ->
closed; a refusal is decided and closed without being carried out; a platform request about a
clinic's patient is forwarded. Each function checks the state it needs, refuses with
``DsrConflict`` (a 409 upstream) saying what must happen first, appends a step (mirrored to the
audit log) and tells the subject where the law says so.

Deadlines are ``dsr.deadlines``; carrying out access and portability is ``dsr.access`` and
``dsr.portability``, erasure ``dsr.erasure``, telling recipients ``dsr.recipients``; the other
rights go through their own apps' services (contacts, consent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from carely.audit.context import Actor, current_actor
from carely.lib.keyed_hash import keyed_hash
from carely.lib.normalise import InvalidPhoneNumber
from contacts.models import Contact
from dsr import deadlines
from dsr.models import (
    REFUSALS,
    AttachmentKind,
    DataSubjectRequest,
    Decision,
    DsrAttachment,
    NoticeKind,
    ReplyChannel,
    RequestChannel,
    RequestType,
    State,
    StepKind,
    SubjectKind,
    VerificationCode,
)
from dsr.notices import notice_send, reply_address
from dsr.steps import dsr_step_add

if TYPE_CHECKING:
    from carely.orgs.models import Organisation, User

CODE_MINUTES = 30
CODE_MAX_ATTEMPTS = 5
CODES_PER_DAY = 5
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone
MATCH_FIELDS = ("email", "phone", "external_id")


class DsrInvalid(ValueError):
    """One or more inputs are wrong; ``errors`` is ``{field: [message, ...]}``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class DsrConflict(Exception):
    """The step cannot be taken in the request's current state; the message says what first."""


# --- helpers ---------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return timezone.now()


def _today() -> dt.date:
    return timezone.localdate()


def _reference() -> str:
    while True:
        raw = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
        reference = f"DSR-{raw[:4]}-{raw[4:]}"
        if not DataSubjectRequest.objects.filter(reference=reference).exists():
            return reference


def _lock(request: DataSubjectRequest) -> DataSubjectRequest:
    """Re-read the request under a row lock: two DPOs clicking at once take turns."""
    locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
    request.__dict__.update(
        {k: v for k, v in locked.__dict__.items() if not k.startswith("_") and k != "id"}
    )
    return request


def _save(request: DataSubjectRequest, *fields: str) -> None:
    request.updated_at = _now()
    request.save(update_fields=[*fields, "updated_at"])


def _require_state(request: DataSubjectRequest, allowed: tuple[str, ...], doing: str) -> None:
    if request.state not in allowed:
        readable = ", ".join(State(s).label for s in allowed)
        raise DsrConflict(
            f"Request {request.reference} is {State(request.state).label}; {doing} needs it to be "
            f"{readable}."
        )


def _source_for(channel: str) -> str:
    return {"form": "form", "api": "api"}.get(channel, "staff")


def _attach(
    request: DataSubjectRequest, upload: UploadedFile, kind: str, user: User | None
) -> DsrAttachment:
    if upload.size and upload.size > MAX_ATTACHMENT_BYTES:
        raise DsrInvalid(
            {"attachment": [f"The file is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB."]}
        )
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    attachment = DsrAttachment(
        organisation_id=request.organisation_id,
        request=request,
        kind=kind,
        original_name=(upload.name or "")[:255],
        content_type=(upload.content_type or "application/octet-stream")[:100],
        size=upload.size or 0,
        sha256=digest.hexdigest(),
        uploaded_by=user,
    )
    attachment.stored_file.save("upload", upload, save=False)
    attachment.save()
    return attachment


# --- intake (DSR-1, DSR-2) ---------------------------------------------------------------------


def _clean_subject(
    subject: Mapping[str, Any], organisation: Organisation | None, errors: dict[str, list[str]]
) -> dict[str, Any]:
    if not isinstance(subject, Mapping):
        errors["subject"] = [
            "Give an object with any of email, phone, external_id, contact (a contact id)."
        ]
        return {}
    unknown = set(subject) - {"email", "phone", "external_id", "contact", "name"}
    if unknown:
        errors["subject"] = [
            f"Unknown key(s) {', '.join(sorted(unknown))}; use email, phone, external_id, "
            "contact or name."
        ]
    cleaned: dict[str, Any] = {}
    for key in ("name", "email", "phone", "external_id"):
        value = subject.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            errors[f"subject.{key}"] = ["Give it as text."]
            continue
        cleaned[key] = value.strip()
    email = cleaned.get("email", "")
    if email and ("@" not in email or len(email) > 254 or " " in email):
        errors["subject.email"] = [f"“{email[:60]}” is not an e-mail address."]
    phone = cleaned.get("phone", "")
    if phone:
        from carely.lib.normalise import normalise_phone

        region = organisation.default_phone_region if organisation else "SI"
        try:
            cleaned["phone"] = normalise_phone(phone, region=region)
        except InvalidPhoneNumber:
            errors["subject.phone"] = [
                f"“{phone[:40]}” is not a phone number; write it with the country code, "
                "e.g. +386 41 123 456."
            ]
    contact_id = subject.get("contact")
    if contact_id not in (None, ""):
        if organisation is None:
            errors["subject.contact"] = ["A platform request cannot name a clinic's contact."]
        else:
            try:
                contact = Contact.objects.for_organisation(organisation).get(pk=int(contact_id))
            except (TypeError, ValueError, Contact.DoesNotExist):
                errors["subject.contact"] = [f"No contact {contact_id} in your organisation."]
            else:
                cleaned["contact"] = contact
    if not any(cleaned.get(k) for k in ("email", "phone", "external_id", "contact")):
        errors.setdefault("subject", []).append(
            "Say who the request is about: an e-mail, a phone number, an external id or a "
            "contact id."
        )
    return cleaned


def dsr_receive(
    *,
    organisation: Organisation | None,
    type: str,
    channel: str,
    subject: Mapping[str, Any],
    received_at: dt.datetime | None = None,
    details: str = "",
    language: str = "",
    reply_channel: str = "",
    subject_kind: str = SubjectKind.CONTACT,
    created_by: User | None = None,
    api_key: Any = None,
    original: UploadedFile | None = None,
    actor: Actor | None = None,
    notify: bool = True,
) -> DataSubjectRequest:
    """Record a request (DSR-1) in its organisation's queue, or the platform's when
    ``organisation`` is None (DSR-2); match the subject by blind index; tell them of receipt.

    Raises ``DsrInvalid`` naming every bad field."""
    errors: dict[str, list[str]] = {}
    if type not in RequestType.values:
        errors["type"] = [f"Use one of {', '.join(RequestType.values)}."]
    if channel not in RequestChannel.values:
        errors["channel"] = [f"Use one of {', '.join(RequestChannel.values)}."]
    if subject_kind not in SubjectKind.values:
        errors["subject_kind"] = [f"Use one of {', '.join(SubjectKind.values)}."]
    elif organisation is not None and subject_kind != SubjectKind.CONTACT:
        errors["subject_kind"] = [
            "A clinic's queue holds requests about its contacts; requests about platform users "
            "go to the platform DPO."
        ]
    now = _now()
    if received_at is None:
        received_at = now
    elif received_at > now + dt.timedelta(minutes=5):
        errors["received_at"] = ["The request cannot have been received in the future."]
    elif received_at < now - dt.timedelta(days=365):
        errors["received_at"] = ["More than a year ago: check the date."]
    if language and language not in ("sl", "en"):
        errors["language"] = ["Use sl or en."]
    if reply_channel and reply_channel not in ReplyChannel.values:
        errors["reply_channel"] = [f"Use one of {', '.join(ReplyChannel.values)}."]
    if len(details) > 10_000:
        errors["details"] = ["At most 10,000 characters; attach a longer letter as a file."]
    cleaned = _clean_subject(subject, organisation, errors)
    if errors:
        raise DsrInvalid(errors)

    contact = cleaned.get("contact")
    if not reply_channel:
        if channel == RequestChannel.LETTER:
            reply_channel = ReplyChannel.LETTER
        elif cleaned.get("email") or (contact is not None and contact.email):
            reply_channel = ReplyChannel.EMAIL
        elif cleaned.get("phone") or (contact is not None and contact.phone):
            reply_channel = ReplyChannel.SMS
        else:
            reply_channel = ReplyChannel.LETTER
    if not language:
        language = (contact.preferred_language if contact is not None else "") or (
            organisation.default_language if organisation is not None else "sl"
        )
        language = language if language in ("sl", "en") else "sl"
    day = deadlines.local_day(received_at)
    with transaction.atomic():
        request = DataSubjectRequest(
            organisation=organisation,
            reference=_reference(),
            type=type,
            channel=channel,
            subject_kind=subject_kind,
            received_at=received_at,
            clock_started_on=day,
            due_on=deadlines.due_on(day),
            subject_name=cleaned.get("name", "")[:200],
            subject_email=cleaned.get("email", ""),
            subject_phone=cleaned.get("phone", ""),
            subject_external_id=cleaned.get("external_id", ""),
            details=details,
            language=language,
            reply_channel=reply_channel,
            created_by=created_by,
            api_key=api_key,
        )
        request.save()
        candidates = [contact] if contact is not None else dsr_candidates(request)
        if organisation is None and subject_kind == SubjectKind.STAFF_USER:
            from dsr.platform import platform_user_match

            user = platform_user_match(cleaned.get("email", ""))
            if user is not None:
                request.subject_user = user
                request.state = State.AWAITING_VERIFICATION
                _save(request, "subject_user", "state")
        if len(candidates) == 1:
            request.contact = candidates[0]
            request.state = State.AWAITING_VERIFICATION
            if contact is not None:
                request.subject_confirmed_at = now
            _save(request, "contact", "state", "subject_confirmed_at")
        if original is not None:
            _attach(request, original, AttachmentKind.ORIGINAL, created_by)
        dsr_step_add(
            request,
            StepKind.RECEIVED,
            actor=actor,
            data={
                "channel": channel,
                "queue": "platform" if organisation is None else "organisation",
                "candidates": len(candidates),
                "named_contact": contact is not None,
                "original_attached": original is not None,
            },
        )
        if notify:
            notice_send(request, NoticeKind.RECEIPT)
    return request


def _subject_digests(request: DataSubjectRequest) -> dict[str, str]:
    """The blind indexes of what the request gives (computed when it was saved)."""
    out: dict[str, str] = {}
    for key in MATCH_FIELDS:
        digest = getattr(request, f"subject_{key}_bidx", "") or ""
        if digest:
            out[key] = digest
    return out


def dsr_candidates(request: DataSubjectRequest) -> list[Contact]:
    """Contacts of the request's organisation whose e-mail, phone or external id (blind
    indexes) equal what the request gives. Several are shown to the DPO to pick; none is merged."""
    if request.organisation_id is None:
        return []
    digests = _subject_digests(request)
    if not digests:
        return []
    condition = Q()
    for key, digest in digests.items():
        condition |= Q(**{f"{key}_bidx": digest})
    return list(
        Contact.objects.filter(organisation_id=request.organisation_id)
        .filter(condition)
        .order_by("pk")[:20]
    )


def dsr_confirm_subject(
    request: DataSubjectRequest, *, contact: Contact, actor: Actor | None = None
) -> DataSubjectRequest:
    """The DPO says which contact the request is about (among the candidates, or found by hand)."""
    if contact.organisation_id != request.organisation_id:
        raise DsrInvalid({"contact": [f"No contact {contact.pk} in this request's organisation."]})
    with transaction.atomic():
        _lock(request)
        _require_state(
            request,
            (State.RECEIVED, State.AWAITING_VERIFICATION, State.AWAITING_INFORMATION),
            "confirming the subject",
        )
        changed = request.contact_id != contact.pk
        request.contact = contact
        request.subject_confirmed_at = _now()
        if changed:
            # A code or attestation was about someone else: verify again.
            request.verified_at = None
            request.verification_method = ""
        if request.state == State.RECEIVED:
            request.state = State.AWAITING_VERIFICATION
        _save(
            request,
            "contact",
            "subject_confirmed_at",
            "verified_at",
            "verification_method",
            "state",
        )
        dsr_step_add(
            request, StepKind.SUBJECT_CONFIRMED, actor=actor, data={"contact_id": contact.pk}
        )
    return request


# --- identity (DSR-3) ------------------------------------------------------------------------


def _code_hash(request: DataSubjectRequest, code: str) -> str:
    return keyed_hash(f"{request.pk}:{code}", purpose="dsr_code")


def dsr_code_send(
    request: DataSubjectRequest, *, channel: str = "", actor: Actor | None = None
) -> VerificationCode:
    """Send a one-time code to an address ON FILE for the confirmed contact (never to an
    address the request gave), through the messaging core. A new code replaces the last."""
    from messaging.services import MessageInvalid, MessageRefused, message_enqueue

    with transaction.atomic():
        _lock(request)
        _require_state(
            request,
            (State.AWAITING_VERIFICATION, State.AWAITING_INFORMATION, State.RECEIVED),
            "sending a verification code",
        )
        contact = request.contact
        if request.organisation is None and request.subject_user is not None:
            return _platform_code_send(request, actor)
        if contact is None or request.organisation is None:
            raise DsrConflict(
                "Confirm which contact the request is about first: a code only goes to an "
                "address already on file."
            )
        if not channel:
            channel = "email" if contact.email else "sms"
        if channel not in ("email", "sms"):
            raise DsrInvalid({"channel": ["Use email or sms."]})
        if not (contact.email if channel == "email" else contact.phone):
            raise DsrInvalid(
                {
                    "channel": [
                        f"The contact has no {'e-mail address' if channel == 'email' else 'phone'}"
                        " on file; use the other channel or a staff attestation."
                    ]
                }
            )
        record, code = _code_issue(request, channel)
        from dsr.notices import render_notice

        subject, text = render_notice(
            request, NoticeKind.VERIFICATION_CODE, {"code": code, "minutes": CODE_MINUTES}
        )
        try:
            message_enqueue(
                organisation=request.organisation,
                contact=contact,
                channel=channel,
                kind="transactional",
                purpose="data_subject_request",
                text=text,
                subject=subject if channel == "email" else "",
                dedupe_key=f"dsr:{request.reference}:code:{record.pk}",
            )
        except (MessageRefused, MessageInvalid) as exc:
            raise DsrConflict(f"The code could not be sent: {exc}") from exc
        if request.state == State.RECEIVED:
            request.state = State.AWAITING_VERIFICATION
            _save(request, "state")
        dsr_step_add(
            request,
            StepKind.CODE_SENT,
            actor=actor,
            data={"channel": channel, "code_id": record.pk, "expires_in_minutes": CODE_MINUTES},
        )
    return record


def _code_issue(request: DataSubjectRequest, channel: str) -> tuple[VerificationCode, str]:
    """A new code for the request (the last one stops working); at most CODES_PER_DAY a day,
    so the form cannot be used to flood someone's phone."""
    today_codes = VerificationCode.objects.filter(
        request=request, created_at__gte=_now() - dt.timedelta(days=1)
    ).count()
    if today_codes >= CODES_PER_DAY:
        raise DsrConflict(
            f"{CODES_PER_DAY} codes were sent in the last 24 hours; use a staff attestation "
            "or try tomorrow."
        )
    VerificationCode.objects.filter(
        request=request, used_at__isnull=True, superseded_at__isnull=True
    ).update(superseded_at=_now())
    code = f"{secrets.randbelow(1_000_000):06d}"
    record = VerificationCode.objects.create(
        organisation_id=request.organisation_id,
        request=request,
        channel=channel,
        code_hash=_code_hash(request, code),
        expires_at=_now() + dt.timedelta(minutes=CODE_MINUTES),
    )
    return record, code


def _platform_code_send(request: DataSubjectRequest, actor: Actor | None) -> VerificationCode:
    from dsr.notices import render_notice
    from dsr.platform import platform_code_deliver

    user = request.subject_user
    assert user is not None
    record, code = _code_issue(request, "email")
    subject, text = render_notice(
        request, NoticeKind.VERIFICATION_CODE, {"code": code, "minutes": CODE_MINUTES}
    )
    platform_code_deliver(user, subject, text)
    if request.state == State.RECEIVED:
        request.state = State.AWAITING_VERIFICATION
        _save(request, "state")
    dsr_step_add(
        request,
        StepKind.CODE_SENT,
        actor=actor,
        data={"channel": "email", "code_id": record.pk, "expires_in_minutes": CODE_MINUTES},
    )
    return record


def dsr_code_check(request: DataSubjectRequest, *, code: str, actor: Actor | None = None) -> bool:
    """True and the request is verified when ``code`` is the live code; a wrong code counts an
    attempt (5 per code), an expired or used one never verifies."""
    code = (code or "").strip().replace(" ", "")
    with transaction.atomic():
        _lock(request)
        if request.verified_at is not None:
            raise DsrConflict(f"Request {request.reference} is already verified.")
        record = (
            VerificationCode.objects.select_for_update()
            .filter(request=request, used_at__isnull=True, superseded_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if record is None:
            raise DsrConflict("No code is waiting: send a code first.")
        if record.expires_at <= _now():
            raise DsrConflict(f"The code expired after {CODE_MINUTES} minutes: send a new one.")
        if record.attempts >= CODE_MAX_ATTEMPTS:
            raise DsrConflict(
                f"{CODE_MAX_ATTEMPTS} wrong attempts: this code is blocked; send a new one."
            )
        record.attempts += 1
        matches = bool(code) and hmac.compare_digest(record.code_hash, _code_hash(request, code))
        if not matches:
            record.save(update_fields=["attempts"])
            dsr_step_add(
                request,
                StepKind.CODE_FAILED,
                actor=actor,
                data={"code_id": record.pk, "attempts": record.attempts},
            )
            return False
        record.used_at = _now()
        record.save(update_fields=["attempts", "used_at"])
        _verified(request, "code", actor, {"code_id": record.pk})
    return True


def _verified(
    request: DataSubjectRequest, method: str, actor: Actor | None, data: dict[str, Any]
) -> None:
    request.verified_at = _now()
    request.verification_method = method
    request.state = State.VERIFIED
    _save(request, "verified_at", "verification_method", "state")
    dsr_step_add(request, StepKind.VERIFIED, actor=actor, data={"method": method, **data})


def dsr_attest(
    request: DataSubjectRequest,
    *,
    user: User | None,
    statement: str,
    evidence: UploadedFile | None = None,
    actor: Actor | None = None,
) -> DataSubjectRequest:
    """A staff member attests the subject's identity (seen in person, called back on the number
    on file...), with evidence attached (DSR-3). The statement is kept, encrypted, in the step."""
    statement = (statement or "").strip()
    errors: dict[str, list[str]] = {}
    if len(statement) < 10:
        errors["statement"] = [
            "Say how you identified the subject (e.g. “identity card checked at reception”)."
        ]
    with transaction.atomic():
        _lock(request)
        if request.verified_at is not None:
            raise DsrConflict(f"Request {request.reference} is already verified.")
        has_evidence = (
            evidence is not None
            or request.attachments.filter(kind=AttachmentKind.EVIDENCE).exists()
        )
        if not has_evidence:
            errors["evidence"] = [
                "Attach the evidence (a scan of the signed form, a note of the call-back)."
            ]
        if errors:
            raise DsrInvalid(errors)
        if request.organisation_id is not None and request.contact_id is None:
            raise DsrConflict("Confirm which contact the request is about first.")
        attachment_id = None
        if evidence is not None:
            attachment_id = _attach(request, evidence, AttachmentKind.EVIDENCE, user).pk
        request.verified_at = _now()
        request.verification_method = "attestation"
        request.state = State.VERIFIED
        _save(request, "verified_at", "verification_method", "state")
        dsr_step_add(
            request,
            StepKind.VERIFIED,
            actor=actor,
            note=statement,
            data={"method": "attestation", "evidence_attachment_id": attachment_id},
        )
    return request


def dsr_request_info(
    request: DataSubjectRequest,
    *,
    what: str,
    identity: bool,
    actor: Actor | None = None,
) -> DataSubjectRequest:
    """Ask the subject for more information. ``identity``: needed to identify them (DSR-3):
    the one-month clock starts again when it arrives (ADR 0013); otherwise the clock runs on."""
    what = (what or "").strip()
    if len(what) < 10:
        raise DsrInvalid({"what": ["Say what you need from the subject and why."]})
    with transaction.atomic():
        _lock(request)
        _require_state(
            request,
            (State.RECEIVED, State.AWAITING_VERIFICATION, State.VERIFIED),
            "asking for information",
        )
        previous = request.state
        request.state = State.AWAITING_INFORMATION
        _save(request, "state")
        dsr_step_add(
            request,
            StepKind.INFO_REQUESTED,
            actor=actor,
            note=what,
            data={"identity": identity, "resume_state": previous},
        )
        notice_send(request, NoticeKind.INFO_REQUEST, context={"what": what, "identity": identity})
    return request


def dsr_info_received(
    request: DataSubjectRequest,
    *,
    note: str = "",
    attachment: UploadedFile | None = None,
    user: User | None = None,
    received_at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> DataSubjectRequest:
    """The information asked for arrived: back to where the request was; when it was asked for
    to identify the subject, the clock starts again from this day (unless already extended)."""
    with transaction.atomic():
        _lock(request)
        _require_state(request, (State.AWAITING_INFORMATION,), "recording information received")
        asked = request.steps.filter(kind=StepKind.INFO_REQUESTED).order_by("-at", "-pk").first()
        data = asked.data if asked else {}
        request.state = data.get("resume_state") or State.RECEIVED
        fields = ["state"]
        restarted = False
        if data.get("identity") and request.extended_at is None:
            day = deadlines.local_day(received_at or _now())
            request.clock_started_on = day
            request.due_on = deadlines.due_on(day)
            fields += ["clock_started_on", "due_on"]
            restarted = True
        _save(request, *fields)
        attachment_id = None
        if attachment is not None:
            attachment_id = _attach(request, attachment, AttachmentKind.INFORMATION, user).pk
        dsr_step_add(
            request,
            StepKind.INFO_RECEIVED,
            actor=actor,
            note=note,
            data={
                "clock_restarted": restarted,
                "due_on": request.due_on.isoformat(),
                "attachment_id": attachment_id,
            },
        )
    return request


# --- deadlines (DSR-4, DSR-13) -----------------------------------------------------------------


def dsr_extend_deadline(
    request: DataSubjectRequest, *, reason: str, actor: Actor | None = None
) -> DataSubjectRequest:
    """Extend by two further months for complexity or volume (DSR-4): only once, only with a
    reason, and only within the first month, since the subject is told now, with the reason."""
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise DsrInvalid(
            {
                "reason": [
                    "Give the reason (complexity or number of requests); the subject reads it."
                ]
            }
        )
    with transaction.atomic():
        _lock(request)
        _require_state(request, OPEN_FOR_WORK, "extending the deadline")
        if request.complaint_of_id is not None:
            raise DsrConflict(
                "A complaint is decided within 5 working days; it cannot be extended."
            )
        if request.extended_at is not None:
            raise DsrConflict(
                f"The deadline was already extended on {request.extended_at:%d.%m.%Y}; "
                "two further months is the most the law allows."
            )
        today = _today()
        if not deadlines.extension_allowed(request.clock_started_on, today):
            raise DsrConflict(
                f"Too late to extend: the subject had to be told within the first month, by "
                f"{deadlines.due_on(request.clock_started_on):%d.%m.%Y}. Answer now."
            )
        request.extended_at = _now()
        request.extension_reason = reason
        request.due_on = deadlines.extended_due_on(request.clock_started_on)
        _save(request, "extended_at", "extension_reason", "due_on")
        dsr_step_add(
            request,
            StepKind.EXTENDED,
            actor=actor,
            data={"due_on": request.due_on.isoformat()},
        )
        notice_send(request, NoticeKind.EXTENSION, context={"reason": reason})
    return request


OPEN_FOR_WORK = (
    State.RECEIVED,
    State.AWAITING_VERIFICATION,
    State.AWAITING_INFORMATION,
    State.VERIFIED,
    State.DECIDED,
)


def dsr_earlier_requests(request: DataSubjectRequest) -> list[DataSubjectRequest]:
    """Earlier requests of the same subject in the same queue (DSR-5: is this repetitive?),
    matched by contact or by the blind indexes of what was given."""
    condition = Q()
    if request.contact_id:
        condition |= Q(contact_id=request.contact_id)
    for key, digest in _subject_digests(request).items():
        condition |= Q(**{f"subject_{key}_bidx": digest})
    if not condition:
        return []
    return list(
        DataSubjectRequest.objects.filter(organisation=request.organisation)
        .filter(condition)
        .exclude(pk=request.pk)
        .filter(received_at__lte=request.received_at)
        .order_by("-received_at")[:50]
    )


# --- decision (DSR-5, DSR-11) ------------------------------------------------------------------

_DECISION_TEXT = {
    "sl": {
        Decision.GRANTED: "zahtevi bomo ugodili.",
        Decision.REFUSED_UNFOUNDED: "zahtevo zavračamo kot očitno neutemeljeno.",
        Decision.REFUSED_EXCESSIVE: "zahtevo zavračamo kot očitno pretirano.",
        Decision.FEE: "zahtevi bomo ugodili proti plačilu razumne pristojbine.",
        Decision.REFUSED_IDENTITY: "zahtevo zavračamo, ker vaše istovetnosti ni bilo mogoče "
        "ugotoviti.",
        Decision.REFUSED_COMPELLING_GROUNDS: "ugovor zavračamo, ker obstajajo nujni legitimni "
        "razlogi za obdelavo.",
    },
    "en": {
        Decision.GRANTED: "we will carry it out.",
        Decision.REFUSED_UNFOUNDED: "we refuse it as manifestly unfounded.",
        Decision.REFUSED_EXCESSIVE: "we refuse it as manifestly excessive.",
        Decision.FEE: "we will carry it out against a reasonable fee.",
        Decision.REFUSED_IDENTITY: "we refuse it because we could not identify you.",
        Decision.REFUSED_COMPELLING_GROUNDS: "we refuse the objection because there are "
        "compelling legitimate grounds for the processing.",
    },
}


def dsr_decide(
    request: DataSubjectRequest,
    *,
    decision: str,
    reason: str = "",
    fee_cents: int | None = None,
    actor: Actor | None = None,
) -> DataSubjectRequest:
    """Grant, refuse (manifestly unfounded or excessive, identity, compelling grounds) or charge
    a fee. Every refusal and fee needs a reason and tells the subject of the right to complain
    to the Information Commissioner (DSR-5)."""
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if decision not in Decision.values:
        errors["decision"] = [f"Use one of {', '.join(Decision.values)}."]
    elif decision != Decision.GRANTED and len(reason) < 10:
        errors["reason"] = ["A refusal or a fee needs its reason; the subject reads it."]
    if decision == Decision.FEE and not (isinstance(fee_cents, int) and 0 < fee_cents <= 100_000):
        errors["fee_cents"] = ["Give the fee in cents (e.g. 1500 for EUR 15.00), at most 1000 EUR."]
    if errors:
        raise DsrInvalid(errors)
    with transaction.atomic():
        _lock(request)
        _require_state(
            request,
            (
                State.RECEIVED,
                State.AWAITING_VERIFICATION,
                State.AWAITING_INFORMATION,
                State.VERIFIED,
            ),
            "deciding",
        )
        if decision in (Decision.GRANTED, Decision.FEE) and request.verified_at is None:
            raise DsrConflict(
                "Verify the subject's identity first (a code to the address on file or a staff "
                "attestation); then decide."
            )
        if decision == Decision.REFUSED_IDENTITY:
            tried = request.steps.filter(
                kind__in=(StepKind.CODE_FAILED, StepKind.INFO_REQUESTED, StepKind.CODE_SENT)
            ).exists()
            if request.verified_at is not None:
                raise DsrConflict("The subject is verified: identity is no reason to refuse.")
            if not tried:
                raise DsrConflict(
                    "A request is refused for identity only when the subject cannot be "
                    "identified: send a code or ask for more information first (DSR-3)."
                )
        if decision == Decision.REFUSED_COMPELLING_GROUNDS:
            _check_compelling_grounds(request)
        request.decision = decision
        request.decision_reason = reason
        request.fee_cents = fee_cents if decision == Decision.FEE else None
        request.decided_at = _now()
        request.state = State.DECIDED
        _save(request, "decision", "decision_reason", "fee_cents", "decided_at", "state")
        dsr_step_add(
            request,
            StepKind.DECIDED,
            actor=actor,
            data={"decision": decision, "fee_cents": request.fee_cents},
        )
        language = request.language if request.language in ("sl", "en") else "sl"
        notice_send(
            request,
            NoticeKind.DECISION,
            context={
                "decision_text": _DECISION_TEXT[language][Decision(decision)],
                "reason": reason,
                "fee": f"{fee_cents / 100:.2f}" if decision == Decision.FEE and fee_cents else "",
                "refused": decision in REFUSALS or decision == Decision.FEE,
            },
        )
    return request


def _check_compelling_grounds(request: DataSubjectRequest) -> None:
    if request.type != RequestType.OBJECTION:
        raise DsrConflict("Compelling legitimate grounds answer an objection only.")
    kind = _objection_kind(request)
    if kind != "legitimate_interest":
        raise DsrConflict(
            "An objection to direct marketing is always upheld (DSR-11, CON-6); compelling "
            "grounds can only answer an objection to processing on legitimate interest."
        )


def _objection_kind(request: DataSubjectRequest) -> str:
    params = _params(request)
    return str(params.get("objection") or "direct_marketing")


def _params(request: DataSubjectRequest) -> dict[str, Any]:
    try:
        value = json.loads(request.changes) if request.changes else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dsr_params_set(
    request: DataSubjectRequest, params: Mapping[str, Any], *, actor: Actor | None = None
) -> None:
    """What carrying the request out needs, by type (kept encrypted): rectification
    ``{"changes": {...}, "statement": "..."}``, objection ``{"objection": kind}``, withdrawal
    ``{"purposes": [...]}``, restriction ``{"reason": "..."}``, portability
    ``{"push_url": ...}``."""
    request.changes = json.dumps(dict(params), ensure_ascii=False, default=str)
    _save(request, "changes")


# --- carrying it out (DSR-6..DSR-12) -----------------------------------------------------------


def dsr_execute(
    request: DataSubjectRequest,
    *,
    params: Mapping[str, Any] | None = None,
    user: User | None = None,
    actor: Actor | None = None,
) -> DataSubjectRequest:
    """Carry out a granted request through the service that owns the right, tell recipients
    (DSR-12) and the subject. Runs once: a second call is refused (nothing is done twice).

    A portability push to another controller is made after the commit, outside the request's
    lock (it may take 20 s), and recorded whatever it answers. If anything fails, files the
    attempt already wrote to storage are removed, so no response is left without its row."""
    actor = actor or current_actor()
    push_url = str((params or {}).get("push_url") or "")
    if push_url and request.type == RequestType.PORTABILITY:
        from dsr.portability import PushUrlRefused, push_url_check

        try:
            push_url_check(push_url)
        except PushUrlRefused as exc:
            raise DsrInvalid({"push_url": [str(exc)]}) from exc
    try:
        _execute_locked(request, params, user, actor)
    except BaseException:
        request.__dict__.pop("_recipients_pending", None)
        _orphan_files_remove(request)
        raise
    _after_commit(request, actor)
    if push_url and request.type == RequestType.PORTABILITY:
        from dsr.portability import portability_push

        push = portability_push(request, push_url, actor=actor)
        request.result = {**request.result, "push_id": push.pk, "push_status": push.status_code}
        _save(request, "result")
    return request


def _recipients_after_commit(
    request: DataSubjectRequest, recipients: list[Any], action: str
) -> None:
    """Recipients are told once the change is committed: an e-mail or a POST cannot be taken
    back if the transaction rolls back (DSR-12)."""
    request.__dict__["_recipients_pending"] = (recipients, action)


def _after_commit(request: DataSubjectRequest, actor: Actor) -> None:
    from dsr.recipients import recipients_notify

    pending = request.__dict__.pop("_recipients_pending", None)
    result = dict(request.result)
    if pending is not None:
        recipients, action = pending
        notified = recipients_notify(request, recipients, action=action, actor=actor)
        result["recipients_notified"] = len(notified)
    if request.type == RequestType.ERASURE and isinstance(result.get("verification"), dict):
        # The stored files are deleted when the erasure commits; their check is its own step.
        storage = (
            request.steps.filter(kind=StepKind.VERIFICATION_RESULT, data__stage="storage")
            .order_by("-at", "-pk")
            .first()
        )
        if storage is not None:
            verification = dict(result["verification"])
            verification["storage_checked"] = True
            verification["files_left"] = storage.data.get("files_left", 0)
            verification["passed"] = bool(verification.get("passed")) and not storage.data.get(
                "files_left", 0
            )
            result["verification"] = verification
    if result != request.result:
        request.result = result
        _save(request, "result")


def _orphan_files_remove(request: DataSubjectRequest) -> None:
    """Delete stored responses of this request that no row names (a rolled-back attempt)."""
    from dsr.models import DsrArtifact

    storage = DsrArtifact._meta.get_field("stored_file").storage
    folder = f"dsr/{request.organisation_id or 'platform'}/{request.pk}"
    try:
        _dirs, files = storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    named = {
        str(name)
        for name in DsrArtifact.objects.filter(request_id=request.pk).values_list(
            "stored_file", flat=True
        )
    }
    for name in files:
        path = f"{folder}/{name}"
        if path not in named:
            storage.delete(path)


def _execute_locked(
    request: DataSubjectRequest,
    params: Mapping[str, Any] | None,
    user: User | None,
    actor: Actor,
) -> None:
    with transaction.atomic():
        _lock(request)
        _require_state(request, (State.DECIDED,), "carrying out the request")
        if request.decision not in (Decision.GRANTED, Decision.FEE):
            raise DsrConflict(
                f"The request was decided “{Decision(request.decision).label}”; there is "
                "nothing to carry out. Close it."
            )
        if request.organisation is not None and request.contact is None:
            raise DsrConflict("Carrying out a request needs its confirmed contact.")
        if params:
            dsr_params_set(request, params, actor=actor)
        merged = _params(request)
        note = ""
        try:
            if request.organisation is None:
                from dsr.platform import platform_execute

                result, notice_context, address, contact_gone, note = platform_execute(
                    request, merged, actor
                )
            else:
                executor = _EXECUTORS[RequestType(request.type)]
                result, notice_context, address, contact_gone = executor(
                    request, merged, user, actor
                )
        except _REFUSED_INPUT as exc:
            raise DsrInvalid({_INPUT_FIELD.get(type(exc).__name__, "params"): [str(exc)]}) from exc
        except _REFUSED_STATE as exc:
            raise DsrConflict(str(exc)) from exc
        request.result = result
        request.executed_at = _now()
        request.state = State.EXECUTED
        _save(request, "result", "executed_at", "state")
        dsr_step_add(request, StepKind.EXECUTED, actor=actor, note=note, data=_summary(result))
        if request.type in (RequestType.ACCESS, RequestType.PORTABILITY):
            notice_context["complaint_until"] = deadlines.complaint_deadline(_today())
        notice_send(
            request,
            NoticeKind.RESULT,
            context=notice_context,
            address=address,
            contact_gone=contact_gone,
        )


def _refusals() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    from carely.orgs.suspension import OrganisationSuspended
    from dsr.erasure import ErasureIncomplete, ErasureInvalid
    from dsr.platform import PlatformRequestInvalid
    from dsr.portability import PushUrlRefused

    return (PushUrlRefused, PlatformRequestInvalid), (
        ErasureIncomplete,
        ErasureInvalid,
        OrganisationSuspended,
    )


_REFUSED_INPUT, _REFUSED_STATE = _refusals()
_INPUT_FIELD = {"PushUrlRefused": "push_url", "PlatformRequestInvalid": "note"}


def _summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """The step's copy of the result: scalars and small dicts only."""
    return {k: v for k, v in result.items() if isinstance(v, int | str | bool | float)}


Executed = tuple[dict[str, Any], dict[str, Any], Any, bool]


def _execute_access(
    request: DataSubjectRequest, params: Mapping[str, Any], user: Any, actor: Actor
) -> Executed:
    from dsr.access import access_package_build
    from dsr.downloads import download_url

    artifact, token = access_package_build(request, actor=actor)
    result = {"artifact_id": artifact.pk, "bytes": artifact.size, "content_hash": artifact.sha256}
    context = {"link": download_url(token), "expires": artifact.expires_at}
    return result, context, None, False


def _execute_portability(
    request: DataSubjectRequest, params: Mapping[str, Any], user: Any, actor: Actor
) -> Executed:
    from dsr.downloads import download_url
    from dsr.portability import portability_package_build

    artifact, token = portability_package_build(request, actor=actor)
    result: dict[str, Any] = {"artifact_id": artifact.pk, "bytes": artifact.size}
    context = {"link": download_url(token), "expires": artifact.expires_at}
    return result, context, None, False


def _execute_rectification(
    request: DataSubjectRequest, params: Mapping[str, Any], user: Any, actor: Actor
) -> Executed:
    from contacts.services import (
        ContactInvalid,
        ContactRestricted,
        contact_statement_add,
        contact_update,
    )
    from dsr.recipients import recipients_collect

    changes = params.get("changes") or {}
    statement = str(params.get("statement") or "").strip()
    if not isinstance(changes, Mapping) or (not changes and not statement):
        raise DsrInvalid(
            {
                "changes": [
                    'Give the corrected values ({"phone": "+386..."}) and/or a supplementary '
                    "statement that completes the record."
                ]
            }
        )
    contact = request.contact
    assert contact is not None
    reason = f"rectification request {request.reference}"
    try:
        changed = (
            contact_update(contact=contact, data=dict(changes), reason=reason) if changes else {}
        )
        if statement:
            contact_statement_add(contact=contact, statement=statement, reason=reason)
    except ContactInvalid as exc:
        raise DsrInvalid({f"changes.{k}": v for k, v in exc.errors.items()}) from exc
    except ContactRestricted as exc:
        raise DsrConflict(
            "The contact is restricted; lift the restriction (the subject must be told first) "
            "before correcting it."
        ) from exc
    _recipients_after_commit(request, recipients_collect(request), "rectification")
    result = {"fields_changed": sorted(changed), "statement_added": bool(statement)}
    return result, {"summary": ""}, None, False


def _execute_erasure(
    request: DataSubjectRequest, params: Mapping[str, Any], user: Any, actor: Actor
) -> Executed:
    from dsr.erasure import erasure_execute
    from dsr.recipients import recipients_collect

    # Captured before the erasure replaces the request's copy of them by keyed hashes.
    address = reply_address(request)
    if request.contact is not None:
        from dsr.notices import ReplyAddress

        contact = request.contact
        address = ReplyAddress(
            email=address.email or contact.email or "", phone=address.phone or contact.phone or ""
        )
    recipients = recipients_collect(request)
    outcome = erasure_execute(request, actor=actor)
    _recipients_after_commit(request, recipients, "erasure")
    result = dict(outcome)
    return result, {"summary": ""}, address, True


def _execute_restriction(
    request: DataSubjectRequest, params: Mapping[str, Any], user: Any, actor: Actor
) -> Executed:
    from contacts.services import RestrictionError, contact_restrict
    from dsr.recipients import recipients_collect

    contact = request.contact
    assert contact is not None
    reason = str(params.get("reason") or f"restriction request {request.reference}")
    try:
        contact_restrict(contact=contact, reason=reason)
    except RestrictionError as exc:
        raise DsrConflict(str(exc)) from exc
    _recipients_after_commit(request, recipients_collect(request), "restriction")
    return {"restricted": True}, {"summary": ""}, None, False


def _execute_objection(
    request: DataSubjectRequest, params: Mapping[str, Any], user: Any, actor: Actor
) -> Executed:
    from consent.services import ConsentInvalid, objection_record

    contact = request.contact
    assert contact is not None
    kind = str(params.get("objection") or "direct_marketing")
    try:
        objection = objection_record(
            contact=contact,
            kind=kind,
            source=_source_for(request.channel),
            received_at=request.received_at,
            note=f"request {request.reference}",
        )
    except ConsentInvalid as exc:
        raise DsrInvalid({f"objection.{k}": v for k, v in exc.errors.items()}) from exc
    return {"objection_id": objection.pk, "objection": kind}, {"summary": ""}, None, False


def _execute_withdrawal(
    request: DataSubjectRequest, params: Mapping[str, Any], user: Any, actor: Actor
) -> Executed:
    from consent.models import ConsentEntry
    from consent.services import ConsentInvalid, consent_withdraw

    contact = request.contact
    assert contact is not None
    wanted = params.get("purposes") or []
    given = (
        ConsentEntry.objects.filter(organisation=request.organisation, contact=contact)
        .values_list("purpose__slug", flat=True)
        .distinct()
    )
    purposes = sorted(set(wanted) if wanted else set(given))
    withdrawn = 0
    for slug in purposes:
        try:
            consent_withdraw(
                contact=contact,
                purpose=slug,
                channel="all",
                source=_source_for(request.channel),
                note=f"request {request.reference}",
            )
        except ConsentInvalid as exc:
            raise DsrInvalid({"purposes": [f"“{slug}”: {exc}"]}) from exc
        withdrawn += 1
    return {"purposes_withdrawn": withdrawn}, {"summary": ""}, None, False


_EXECUTORS = {
    RequestType.ACCESS: _execute_access,
    RequestType.PORTABILITY: _execute_portability,
    RequestType.RECTIFICATION: _execute_rectification,
    RequestType.ERASURE: _execute_erasure,
    RequestType.RESTRICTION: _execute_restriction,
    RequestType.OBJECTION: _execute_objection,
    RequestType.WITHDRAWAL: _execute_withdrawal,
}


# --- close, complaints, forwarding (DSR-2, DSR-13, DSR-14) -----------------------------------


def dsr_close(
    request: DataSubjectRequest, *, note: str = "", actor: Actor | None = None
) -> DataSubjectRequest:
    """Close a request that was carried out or refused; builds its evidence pack (DSR-14)."""
    from dsr.evidence import evidence_pack_build

    with transaction.atomic():
        _lock(request)
        if request.state == State.DECIDED and request.decision in (Decision.GRANTED, Decision.FEE):
            raise DsrConflict("The request was granted: carry it out before closing it.")
        _require_state(request, (State.EXECUTED, State.DECIDED), "closing")
        request.closed_at = _now()
        request.state = State.CLOSED
        _save(request, "closed_at", "state")
        if request.type == RequestType.ERASURE and request.executed_at is not None:
            _forget_subject_details(request)
        dsr_step_add(request, StepKind.CLOSED, actor=actor, note=note)
        evidence_pack_build(request)
    return request


def _forget_subject_details(request: DataSubjectRequest) -> None:
    """After an erasure the request keeps only keyed hashes of who it was about (the registry's
    erase already did this for a request it reached; this covers the request itself whatever
    its contact link)."""
    from carely.privacy.erasure import KEYED_HASH_PREFIX

    for field, purpose in (
        ("subject_email", "email"),
        ("subject_phone", "phone"),
        ("subject_external_id", "external_id"),
    ):
        value = getattr(request, field) or ""
        if value and not value.startswith(KEYED_HASH_PREFIX):
            setattr(request, field, KEYED_HASH_PREFIX + keyed_hash(value.lower(), purpose=purpose))
    request.subject_name = ""
    request.details = ""
    request.changes = ""
    request.subject_details_erased_at = _now()
    _save(
        request,
        "subject_email",
        "subject_phone",
        "subject_external_id",
        "subject_name",
        "details",
        "changes",
        "subject_details_erased_at",
    )


def dsr_complaint_open(
    request: DataSubjectRequest,
    *,
    details: str,
    received_at: dt.datetime | None = None,
    channel: str = "",
    created_by: User | None = None,
    api_key: Any = None,
    actor: Actor | None = None,
) -> DataSubjectRequest:
    """A reasoned complaint about an access decision within 15 days (DSR-13): a new request,
    linked to the first, due in 5 Slovenian working days (TEN-6)."""
    details = (details or "").strip()
    if len(details) < 10:
        raise DsrInvalid({"details": ["A complaint must say what is wrong with the answer."]})
    received_at = received_at or _now()
    if request.type != RequestType.ACCESS or request.decided_at is None:
        raise DsrConflict("A complaint under DSR-13 is about a decided access request.")
    decided_on = deadlines.local_day(request.decided_at)
    last_day = deadlines.complaint_deadline(decided_on)
    if deadlines.local_day(received_at) > last_day:
        raise DsrConflict(
            f"The 15 days for a complaint ended on {last_day:%d.%m.%Y}; record it as a new "
            "request instead."
        )
    with transaction.atomic():
        day = deadlines.local_day(received_at)
        complaint = DataSubjectRequest(
            organisation_id=request.organisation_id,
            reference=_reference(),
            type=request.type,
            channel=channel or request.channel,
            subject_kind=request.subject_kind,
            complaint_of=request,
            received_at=received_at,
            clock_started_on=day,
            due_on=deadlines.complaint_due_on(day),
            subject_name=request.subject_name,
            subject_email=request.subject_email,
            subject_phone=request.subject_phone,
            subject_external_id=request.subject_external_id,
            details=details,
            language=request.language,
            reply_channel=request.reply_channel,
            contact=request.contact,
            subject_confirmed_at=request.subject_confirmed_at,
            verified_at=request.verified_at,
            verification_method=request.verification_method,
            state=State.VERIFIED if request.verified_at else State.RECEIVED,
            created_by=created_by,
            api_key=api_key,
        )
        complaint.save()
        dsr_step_add(
            complaint,
            StepKind.RECEIVED,
            actor=actor,
            data={"complaint_of": request.pk, "due_on": complaint.due_on.isoformat()},
        )
        dsr_step_add(
            request, StepKind.COMPLAINT_OPENED, actor=actor, data={"complaint_id": complaint.pk}
        )
        notice_send(complaint, NoticeKind.RECEIPT)
    return complaint


def dsr_forward(
    request: DataSubjectRequest,
    *,
    organisation: Organisation,
    actor: Actor | None = None,
) -> DataSubjectRequest:
    """The platform DPO forwards a request about a clinic's patient to that clinic (DSR-2): a
    copy lands in the clinic's queue with the original receipt time (the subject's clock does not
    restart because they wrote to the wrong address), the platform's copy is closed as forwarded,
    and the subject is told, with both recorded. The platform's copy then keeps only keyed
    hashes of the subject's details."""
    with transaction.atomic():
        _lock(request)
        if request.organisation_id is not None:
            raise DsrConflict("Only a request in the platform's queue is forwarded to a clinic.")
        _require_state(
            request,
            (State.RECEIVED, State.AWAITING_VERIFICATION, State.AWAITING_INFORMATION),
            "forwarding",
        )
        copy = dsr_receive(
            organisation=organisation,
            type=request.type,
            channel=RequestChannel.FORWARDED,
            subject={
                k: v
                for k, v in {
                    "name": request.subject_name,
                    "email": request.subject_email,
                    "phone": request.subject_phone,
                    "external_id": request.subject_external_id,
                }.items()
                if v
            },
            received_at=request.received_at,
            details=request.details,
            language=request.language,
            reply_channel=request.reply_channel,
            actor=actor,
            notify=False,
        )
        copy.forwarded_from = request
        _save(copy, "forwarded_from")
        request.state = State.FORWARDED
        request.closed_at = _now()
        _save(request, "state", "closed_at")
        dsr_step_add(
            request,
            StepKind.FORWARDED,
            actor=actor,
            data={"organisation_id": organisation.pk, "forwarded_request_id": copy.pk},
        )
        notice_send(
            request,
            NoticeKind.FORWARDED,
            context={"clinic": organisation.name, "clinic_reference": copy.reference},
        )
        # The clinic holds the request now; the platform keeps only keyed hashes of who it was
        # about, so an erasure the clinic carries out leaves no copy of them here.
        _forget_subject_details(request)
    return copy


def dsr_notice_staff_sent(
    notice_id: int, *, request: DataSubjectRequest, actor: Actor | None = None
) -> None:
    """Staff sent a letter or called: the notice is marked sent (kept with who and when)."""
    from dsr.models import DsrNotice, NoticeStatus

    with transaction.atomic():
        notice = DsrNotice.objects.select_for_update().get(pk=notice_id, request=request)
        if notice.status != NoticeStatus.STAFF_TO_SEND:
            raise DsrConflict("This notice was not waiting for staff.")
        notice.status = NoticeStatus.STAFF_SENT
        notice.sent_at = _now()
        notice.save(update_fields=["status", "sent_at"])
        dsr_step_add(
            request,
            StepKind.NOTICE_SENT,
            actor=actor,
            data={"notice": notice.kind, "channel": notice.channel, "status": notice.status},
        )
