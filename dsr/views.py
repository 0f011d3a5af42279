"""Staff pages of data-subject requests (DSR-1..DSR-14), mounted at ``/dsr/``.

- the clinic DPO's queue (``Perm.DSR_REVIEW``) and the platform DPO's (``Perm.PLATFORM_DSR``,
  requests with no organisation), soonest due first, overdue rows marked in words;
- one request's page: what the subject gave (decrypted, so the viewing is access-logged), the
  candidate contacts, earlier requests of the same subject, the timeline, notices, files and
  the actions its state allows;
- staff entry of a request that came by letter, phone, e-mail or in person.

Thin: a form in, one ``dsr.services`` call, a redirect out. ``DsrInvalid`` is shown under the
field it names on the request's page; ``DsrConflict`` (the state does not allow it) comes back as
a calm message saying what must happen first. A request outside the person's queue is a 404,
never a 403, so its existence is not given away (TEN-1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from carely.audit.access_log import access_log_record, access_log_record_many
from carely.audit.models import AccessAction, AccessPurpose
from carely.audit.services import audit_record
from carely.orgs.permissions import request_may, require
from carely.orgs.roles import Perm
from carely.web.uploads import upload_limit
from contacts.models import Contact
from contacts.selectors import contact_get
from dsr import deadlines, services
from dsr.forms import (
    CHANNEL_LABELS,
    DECIDED_LABELS,
    REPLY_LABELS,
    STATE_LABELS,
    TYPE_LABELS,
    AttestForm,
    CloseForm,
    CodeCheckForm,
    CodeSendForm,
    ComplaintForm,
    ConfirmSubjectForm,
    DecideForm,
    ExecuteForm,
    ExtendForm,
    ForwardForm,
    InfoReceivedForm,
    InfoRequestForm,
    QueueFilterForm,
    StaffEntryForm,
)
from dsr.models import (
    OPEN_STATES,
    ArtifactKind,
    DataSubjectRequest,
    Decision,
    DsrArtifact,
    DsrAttachment,
    DsrNotice,
    NoticeKind,
    NoticeStatus,
    ReplyChannel,
    RequestType,
    State,
    StepKind,
    SubjectKind,
    VerificationCode,
)

REMIND_WITHIN_DAYS = deadlines.REMIND_WITHIN_DAYS
QUEUE_ROWS = 500
SUBJECT_FIELDS = (
    "subject_name",
    "subject_email",
    "subject_phone",
    "subject_external_id",
    "details",
)
CANDIDATE_FIELDS = ["first_name", "last_name", "email", "phone", "external_id"]

STEP_WORDS: dict[str, Any] = {
    StepKind.RECEIVED: gettext_lazy("received"),
    StepKind.FORWARDED: gettext_lazy("forwarded to the clinic"),
    StepKind.SUBJECT_CONFIRMED: gettext_lazy("subject confirmed"),
    StepKind.CODE_SENT: gettext_lazy("verification code sent"),
    StepKind.CODE_FAILED: gettext_lazy("wrong verification code entered"),
    StepKind.VERIFIED: gettext_lazy("identity verified"),
    StepKind.INFO_REQUESTED: gettext_lazy("information asked for"),
    StepKind.INFO_RECEIVED: gettext_lazy("information received"),
    StepKind.EXTENDED: gettext_lazy("deadline extended"),
    StepKind.DECIDED: gettext_lazy("decided"),
    StepKind.EXECUTED: gettext_lazy("carried out"),
    StepKind.VERIFICATION_RESULT: gettext_lazy("erasure verified"),
    StepKind.RECIPIENT_NOTIFIED: gettext_lazy("recipient notified"),
    StepKind.NOTICE_SENT: gettext_lazy("subject told"),
    StepKind.DOWNLOADED: gettext_lazy("response downloaded"),
    StepKind.PUSHED: gettext_lazy("data sent to another controller"),
    StepKind.COMPLAINT_OPENED: gettext_lazy("complaint opened"),
    StepKind.REMINDED: gettext_lazy("DPO reminded"),
    StepKind.NOTE: gettext_lazy("note"),
    StepKind.CLOSED: gettext_lazy("closed"),
}
NOTICE_WORDS: dict[str, Any] = {
    NoticeKind.RECEIPT: gettext_lazy("Receipt"),
    NoticeKind.VERIFICATION_CODE: gettext_lazy("Verification code"),
    NoticeKind.INFO_REQUEST: gettext_lazy("Information asked for"),
    NoticeKind.EXTENSION: gettext_lazy("Extension and its reasons"),
    NoticeKind.DECISION: gettext_lazy("Decision"),
    NoticeKind.RESULT: gettext_lazy("Result"),
    NoticeKind.FORWARDED: gettext_lazy("Forwarded to the clinic"),
}
NOTICE_STATUS_WORDS: dict[str, Any] = {
    NoticeStatus.QUEUED: gettext_lazy("queued for sending"),
    NoticeStatus.SENT: gettext_lazy("sent"),
    NoticeStatus.STAFF_TO_SEND: gettext_lazy("to be sent by staff"),
    NoticeStatus.STAFF_SENT: gettext_lazy("sent by staff"),
    NoticeStatus.FAILED: gettext_lazy("could not be sent"),
}
ARTIFACT_WORDS: dict[str, Any] = {
    ArtifactKind.ACCESS_ZIP: gettext_lazy("Access response (HTML + JSON)"),
    ArtifactKind.PORTABILITY_ZIP: gettext_lazy("Portable data (JSON + CSV)"),
    ArtifactKind.EVIDENCE_PACK: gettext_lazy("Evidence pack (HTML + JSON)"),
}
ATTACHMENT_WORDS: dict[str, Any] = {
    "original": gettext_lazy("The original request"),
    "evidence": gettext_lazy("Identity evidence"),
    "information": gettext_lazy("Information the subject sent"),
}


def _today() -> dt.date:
    return timezone.localdate()


# --- who may see which request --------------------------------------------------------------------


def _may_clinic(request: HttpRequest) -> bool:
    return getattr(request, "organisation", None) is not None and request_may(
        request, Perm.DSR_REVIEW
    )


def _may_platform(request: HttpRequest) -> bool:
    return request_may(request, Perm.PLATFORM_DSR)


def require_dsr_reviewer(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A request's page serves the clinic DPO and the platform DPO, each for their own queue:
    anonymous people go to sign in, people with neither permission get 403, and the request
    itself is then looked up within what the person may see (404 otherwise)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (_may_clinic(request) or _may_platform(request)):
            raise PermissionDenied("Your role does not allow this.")
        return view(request, *args, **kwargs)

    wrapped.required_perms = (Perm.DSR_REVIEW, Perm.PLATFORM_DSR)  # type: ignore[attr-defined]
    return wrapped


def _visible(request: HttpRequest) -> QuerySet[DataSubjectRequest]:
    """The requests this person may open: their clinic's queue, the platform's, or both."""
    condition = Q(pk__in=[])
    if _may_clinic(request):
        condition |= Q(organisation=request.organisation)  # type: ignore[attr-defined]
    if _may_platform(request):
        condition |= Q(organisation__isnull=True)
    return DataSubjectRequest.objects.filter(condition)


def _request_get(request: HttpRequest, request_id: int) -> DataSubjectRequest:
    return get_object_or_404(
        _visible(request).select_related("organisation", "contact", "complaint_of"),
        pk=request_id,
    )


# --- queues ---------------------------------------------------------------------------------------


def _row(obj: DataSubjectRequest, today: dt.date) -> dict[str, Any]:
    left = deadlines.days_left(obj.due_on, today)
    is_open = obj.state in OPEN_STATES
    return {
        "r": obj,
        "type_label": TYPE_LABELS.get(obj.type, obj.type),
        "channel_label": CHANNEL_LABELS.get(obj.channel, obj.channel),
        "state_label": STATE_LABELS.get(obj.state, obj.state),
        "days_left": left if is_open else None,
        "overdue": is_open and left < 0,
        "due_soon": is_open and 0 <= left <= REMIND_WITHIN_DAYS,
        "overdue_days": -left,
    }


def _queue_page(
    request: HttpRequest, base: QuerySet[DataSubjectRequest], *, platform: bool
) -> HttpResponse:
    today = _today()
    form = QueueFilterForm(request.GET or None)
    state, kind = form.wanted()
    rows = base
    if state == QueueFilterForm.OPEN:
        rows = rows.filter(state__in=OPEN_STATES)
    elif state != QueueFilterForm.ALL:
        rows = rows.filter(state=state)
    if kind:
        rows = rows.filter(type=kind)
    # Whatever the filters show, the counts at the top are of the whole open queue.
    open_rows = base.filter(state__in=OPEN_STATES)
    horizon = today + dt.timedelta(days=REMIND_WITHIN_DAYS)
    context = {
        "form": form,
        "platform": platform,
        "rows": [_row(obj, today) for obj in rows.order_by("due_on", "pk")[:QUEUE_ROWS]],
        "overdue_count": open_rows.filter(due_on__lt=today).count(),
        "due_soon_count": open_rows.filter(due_on__gte=today, due_on__lte=horizon).count(),
        "within_days": REMIND_WITHIN_DAYS,
        "today": today,
        "filtered": bool(request.GET),
    }
    return render(request, "dsr/queue.html", context)


@require(Perm.DSR_REVIEW)
def queue(request: HttpRequest) -> HttpResponse:
    """The clinic's requests (DSR-2, DSR-4): its own organisation's only."""
    organisation = getattr(request, "organisation", None)
    return _queue_page(
        request, DataSubjectRequest.objects.for_organisation(organisation), platform=False
    )


@require(Perm.PLATFORM_DSR)
def platform_queue(request: HttpRequest) -> HttpResponse:
    """Requests about the platform's own data (staff users, customers' contact persons,
    visitors), and those that reached the platform about a clinic's patient (to forward)."""
    return _queue_page(
        request, DataSubjectRequest.objects.filter(organisation__isnull=True), platform=True
    )


# --- one request ----------------------------------------------------------------------------------


def _log_subject_view(
    request: HttpRequest, obj: DataSubjectRequest, candidates: list[Contact]
) -> None:
    """The page shows what the subject gave and the candidates' names and addresses (CNT-3)."""
    shown = [f for f in SUBJECT_FIELDS if getattr(obj, f)]
    if obj.organisation is None:
        # The platform's own data has no clinic's access log; its audit chain records the view.
        if shown:
            audit_record(
                action="dsr.subject_viewed",
                organisation=None,
                object_type="dsr.DataSubjectRequest",
                object_id=obj.pk,
                details={"fields": shown},
            )
        return
    if shown:
        access_log_record(
            organisation=obj.organisation,
            subject_type="dsr_request",
            subject_id=obj.pk,
            what=shown,
            purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
        )
    if candidates:
        access_log_record_many(
            organisation=obj.organisation,
            subject_type="contact",
            subject_ids=[c.pk for c in candidates],
            what=CANDIDATE_FIELDS,
            purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
        )


def _extension(obj: DataSubjectRequest, today: dt.date) -> dict[str, Any]:
    """Whether the deadline can still be extended, the last day it can, or why not (DSR-4)."""
    last_day = deadlines.due_on(obj.clock_started_on)
    why_not = ""
    if obj.state not in services.OPEN_FOR_WORK:
        why_not = _("The request is no longer open.")
    elif obj.complaint_of_id is not None:
        why_not = _("A complaint is decided within 5 working days; it cannot be extended.")
    elif obj.extended_at is not None:
        why_not = _(
            "Already extended on %(day)s: two further months is the most the law allows."
        ) % {"day": timezone.localtime(obj.extended_at).strftime("%d.%m.%Y")}
    elif not deadlines.extension_allowed(obj.clock_started_on, today):
        why_not = _(
            "No longer possible: the subject had to be told within the first month, by %(day)s."
        ) % {"day": last_day.strftime("%d.%m.%Y")}
    return {"allowed": not why_not, "why_not": why_not, "last_day": last_day}


def _live_code(obj: DataSubjectRequest) -> VerificationCode | None:
    return (
        VerificationCode.objects.filter(
            request=obj,
            used_at__isnull=True,
            superseded_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .order_by("-created_at")
        .first()
    )


def _actions(obj: DataSubjectRequest, today: dt.date) -> dict[str, Any]:
    """Which forms the page shows: each only where the request's state allows it."""
    before_decision = obj.state in (
        State.RECEIVED,
        State.AWAITING_VERIFICATION,
        State.AWAITING_INFORMATION,
        State.VERIFIED,
    )
    unverified = obj.verified_at is None and before_decision
    clinic = obj.organisation_id is not None
    identifying = obj.state in (
        State.RECEIVED,
        State.AWAITING_VERIFICATION,
        State.AWAITING_INFORMATION,
    )
    granted = obj.decision in (Decision.GRANTED, Decision.FEE)
    complaint_until = None
    if obj.type == RequestType.ACCESS and obj.decided_at is not None:
        complaint_until = deadlines.complaint_deadline(deadlines.local_day(obj.decided_at))
    return {
        "confirm": clinic and identifying,
        # A code goes only to an address on file: the confirmed contact's, or for the
        # platform the matched user account's.
        "code_send": unverified
        and identifying
        and (obj.contact_id if clinic else obj.subject_user_id) is not None,
        "code_check": unverified and _live_code(obj) is not None,
        "attest": unverified and (obj.contact_id is not None or not clinic),
        "request_info": obj.state in (State.RECEIVED, State.AWAITING_VERIFICATION, State.VERIFIED),
        "info_received": obj.state == State.AWAITING_INFORMATION,
        "decide": before_decision,
        "execute": obj.state == State.DECIDED
        and granted
        and (obj.contact_id is not None or not clinic),
        "close": obj.state == State.EXECUTED or (obj.state == State.DECIDED and not granted),
        "complaint": complaint_until is not None and today <= complaint_until,
        "complaint_until": complaint_until,
        "forward": not clinic and identifying,
    }


def _letter_text(obj: DataSubjectRequest, notice: DsrNotice) -> str:
    """The text of a notice staff must send by letter, rebuilt from what the request keeps;
    a download link exists only in the notice that carried it, so a result letter says to send
    the copy by post."""
    from dsr.notices import render_notice

    context: dict[str, Any] = {}
    if notice.kind == NoticeKind.DECISION:
        language = obj.language if obj.language in ("sl", "en") else "sl"
        decision = obj.decision or Decision.GRANTED
        context = {
            "decision_text": services._DECISION_TEXT[language][Decision(decision)],
            "reason": obj.decision_reason,
            "fee": f"{obj.fee_cents / 100:.2f}" if obj.fee_cents else "",
            "refused": decision != Decision.GRANTED,
        }
    elif notice.kind == NoticeKind.EXTENSION:
        context = {"reason": obj.extension_reason}
    elif notice.kind == NoticeKind.INFO_REQUEST:
        asked = obj.steps.filter(kind=StepKind.INFO_REQUESTED).order_by("-at", "-pk").first()
        context = {
            "what": asked.note if asked else "",
            "identity": bool(asked and asked.data.get("identity")),
        }
    elif notice.kind == NoticeKind.RESULT and obj.type in (
        RequestType.ACCESS,
        RequestType.PORTABILITY,
    ):
        context = {
            "link": _("(the copy is enclosed with this letter)"),
            "complaint_until": deadlines.complaint_deadline(
                deadlines.local_day(obj.executed_at or timezone.now())
            ),
        }
    try:
        subject, text = render_notice(obj, notice.kind, context)
    except Exception:  # a template that needs more than the request keeps
        return ""
    return f"{subject}\n\n{text}"


def _steps(obj: DataSubjectRequest) -> list[dict[str, Any]]:
    """The timeline, naming staff by their e-mail (one query for all of them)."""
    from carely.audit.models import ActorType
    from carely.orgs.models import User

    steps = list(obj.steps.order_by("at", "pk"))
    ids = {s.actor_id for s in steps if s.actor_type == ActorType.USER and s.actor_id.isdigit()}
    emails = dict(User.objects.filter(pk__in=ids).values_list("pk", "email"))
    return [
        {
            "step": s,
            "what": STEP_WORDS.get(s.kind, s.kind),
            "who": emails.get(int(s.actor_id)) if s.actor_id.isdigit() else None,
        }
        for s in steps
    ]


def _detail_context(
    request: HttpRequest, obj: DataSubjectRequest, bound: dict[str, Any] | None = None
) -> dict[str, Any]:
    today = _today()
    bound = bound or {}
    # Matching is for finding who the request is about; once that is settled (or the request is
    # past identification) only the confirmed contact is shown: no one else's details.
    identifying = obj.state in (
        State.RECEIVED,
        State.AWAITING_VERIFICATION,
        State.AWAITING_INFORMATION,
    )
    candidates = services.dsr_candidates(obj) if obj.organisation_id and identifying else []
    if obj.contact is not None and obj.contact not in candidates:
        candidates = [obj.contact, *candidates]
    _log_subject_view(request, obj, candidates)
    purposes: list[tuple[str, str]] = []
    if obj.type == RequestType.WITHDRAWAL and obj.organisation is not None:
        from consent.models import Purpose

        purposes = [(p.slug, p.name) for p in Purpose.objects.for_organisation(obj.organisation)]
    notices = list(obj.notices.order_by("created_at", "pk"))
    row = _row(obj, today)
    forms: dict[str, Any] = {
        "code_send": CodeSendForm(
            initial={"channel": "email" if obj.contact and obj.contact.email else "sms"}
        ),
        "code_check": CodeCheckForm(),
        "attest": AttestForm(),
        "request_info": InfoRequestForm(),
        "info_received": InfoReceivedForm(),
        "extend": ExtendForm(),
        "decide": DecideForm(request_type=obj.type),
        "execute": ExecuteForm(
            request_type=obj.type, purposes=purposes, platform=obj.organisation_id is None
        ),
        "close": CloseForm(),
        "complaint": ComplaintForm(),
        "forward": ForwardForm() if obj.organisation_id is None else None,
    }
    forms.update(bound)
    return {
        "r": obj,
        "row": row,
        "type_label": row["type_label"],
        "state_label": row["state_label"],
        "channel_label": row["channel_label"],
        "reply_label": REPLY_LABELS.get(obj.reply_channel, obj.reply_channel),
        "fee": f"{obj.fee_cents / 100:.2f}" if obj.fee_cents else "",
        "clock_restarted": obj.clock_started_on != deadlines.local_day(obj.received_at),
        "decision_label": DECIDED_LABELS.get(obj.decision, obj.decision) if obj.decision else "",
        "candidates": candidates,
        "identifying": identifying,
        "earlier": [_row(e, today) for e in services.dsr_earlier_requests(obj)],
        "steps": _steps(obj),
        "notices": [
            {
                "n": n,
                "what": NOTICE_WORDS.get(n.kind, n.kind),
                "status": NOTICE_STATUS_WORDS.get(n.status, n.status),
                "channel": REPLY_LABELS.get(n.channel, n.channel),
                "letter": _letter_text(obj, n) if n.status == NoticeStatus.STAFF_TO_SEND else "",
            }
            for n in notices
        ],
        "attachments": [
            {"a": a, "what": ATTACHMENT_WORDS.get(a.kind, a.kind)}
            for a in obj.attachments.order_by("uploaded_at", "pk")
        ],
        "artifacts": [
            {"a": a, "what": ARTIFACT_WORDS.get(a.kind, a.kind)}
            for a in obj.artifacts.order_by("created_at", "pk")
        ],
        "recipients": list(obj.recipient_notifications.order_by("notified_at", "pk")),
        "pushes": list(obj.pushes.order_by("pushed_at", "pk")),
        "result_items": [(k.replace("_", " "), v) for k, v in sorted((obj.result or {}).items())],
        "actions": _actions(obj, today),
        "extension": _extension(obj, today),
        "forms": forms,
        "live_code": _live_code(obj),
        "codes_sent": obj.codes.count(),
    }


@require_dsr_reviewer
def detail(request: HttpRequest, request_id: int) -> HttpResponse:
    obj = _request_get(request, request_id)
    return render(request, "dsr/detail.html", _detail_context(request, obj))


def _act(
    request: HttpRequest,
    request_id: int,
    *,
    name: str,
    form: Any,
    call: Callable[[DataSubjectRequest, Any], Any],
    done: str,
) -> HttpResponse:
    """Validate ``form``, run ``call(request_obj, form)``, and come back to the request: a
    wrong input is shown under its field on the page (400), a state conflict as a message."""
    obj = _request_get(request, request_id)
    if form.is_valid():
        try:
            outcome = call(obj, form)
        except services.DsrInvalid as exc:
            form.add_service_errors(exc.errors)
        except services.DsrConflict as exc:
            flash.warning(request, str(exc))
            return redirect("dsr:detail", obj.pk)
        else:
            if isinstance(outcome, str):
                flash.warning(request, outcome)
            else:
                flash.success(request, done)
            return redirect("dsr:detail", obj.pk)
    obj.refresh_from_db()
    context = _detail_context(request, obj, {name: form})
    context["open_form"] = name
    return render(request, "dsr/detail.html", context, status=400)


@require_POST
@require_dsr_reviewer
def confirm_subject(request: HttpRequest, request_id: int) -> HttpResponse:
    def call(obj: DataSubjectRequest, form: ConfirmSubjectForm) -> Any:
        if obj.organisation is None:
            raise services.DsrConflict(_("A platform request has no clinic contact to confirm."))
        try:
            contact = contact_get(
                organisation=obj.organisation, contact_id=form.cleaned_data["contact"]
            )
        except Http404:
            raise services.DsrInvalid({"contact": [_("No such contact in this clinic.")]}) from None
        return services.dsr_confirm_subject(obj, contact=contact)

    form = ConfirmSubjectForm(request.POST)
    obj = _request_get(request, request_id)
    if not form.is_valid():
        flash.warning(request, _("Choose one of the listed contacts."))
        return redirect("dsr:detail", obj.pk)
    try:
        call(obj, form)
    except (services.DsrInvalid, services.DsrConflict) as exc:
        flash.warning(request, str(exc))
    else:
        flash.success(
            request,
            _("Subject confirmed. Now verify their identity (a code to the address on file)."),
        )
    return redirect("dsr:detail", obj.pk)


@require_POST
@require_dsr_reviewer
def code_send(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        name="code_send",
        form=CodeSendForm(request.POST),
        call=lambda obj, f: services.dsr_code_send(obj, channel=f.cleaned_data["channel"]),
        done=_("Code sent to the address on file. It is valid for 30 minutes."),
    )


@require_POST
@require_dsr_reviewer
def code_check(request: HttpRequest, request_id: int) -> HttpResponse:
    def call(obj: DataSubjectRequest, form: CodeCheckForm) -> Any:
        if services.dsr_code_check(obj, code=form.cleaned_data["code"]):
            return obj
        return _("That code is not right; the attempt was counted (5 per code).")

    return _act(
        request,
        request_id,
        name="code_check",
        form=CodeCheckForm(request.POST),
        call=call,
        done=_("Identity verified with the code."),
    )


def _upload_max() -> int:
    return services.MAX_ATTACHMENT_BYTES


@upload_limit(_upload_max)
@require_POST
@require_dsr_reviewer
def attest(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        name="attest",
        form=AttestForm(request.POST, request.FILES),
        call=lambda obj, f: services.dsr_attest(
            obj,
            user=request.user,  # type: ignore[arg-type]
            statement=f.cleaned_data["statement"],
            evidence=f.cleaned_data.get("evidence"),
        ),
        done=_("Identity attested; the statement and evidence are kept with the request."),
    )


@require_POST
@require_dsr_reviewer
def request_info(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        name="request_info",
        form=InfoRequestForm(request.POST),
        call=lambda obj, f: services.dsr_request_info(
            obj, what=f.cleaned_data["what"], identity=f.cleaned_data["identity"]
        ),
        done=_("The subject was asked for the information."),
    )


@upload_limit(_upload_max)
@require_POST
@require_dsr_reviewer
def info_received(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        name="info_received",
        form=InfoReceivedForm(request.POST, request.FILES),
        call=lambda obj, f: services.dsr_info_received(
            obj,
            note=f.cleaned_data.get("note") or "",
            attachment=f.cleaned_data.get("attachment"),
            user=request.user,  # type: ignore[arg-type]
        ),
        done=_("Information recorded."),
    )


@require_POST
@require_dsr_reviewer
def extend(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        name="extend",
        form=ExtendForm(request.POST),
        call=lambda obj, f: services.dsr_extend_deadline(obj, reason=f.cleaned_data["reason"]),
        done=_("Deadline extended by two months; the subject was told why."),
    )


@require_POST
@require_dsr_reviewer
def decide(request: HttpRequest, request_id: int) -> HttpResponse:
    obj = _request_get(request, request_id)
    return _act(
        request,
        request_id,
        name="decide",
        form=DecideForm(request.POST, request_type=obj.type),
        call=lambda obj, f: services.dsr_decide(
            obj,
            decision=f.cleaned_data["decision"],
            reason=f.cleaned_data.get("reason") or "",
            fee_cents=f.fee_cents(),
        ),
        done=_("Decision recorded; the subject was told."),
    )


@require_POST
@require_dsr_reviewer
def execute(request: HttpRequest, request_id: int) -> HttpResponse:
    obj = _request_get(request, request_id)
    purposes: list[tuple[str, str]] = []
    if obj.type == RequestType.WITHDRAWAL and obj.organisation is not None:
        from consent.models import Purpose

        purposes = [(p.slug, p.name) for p in Purpose.objects.for_organisation(obj.organisation)]
    return _act(
        request,
        request_id,
        name="execute",
        form=ExecuteForm(
            request.POST,
            request_type=obj.type,
            purposes=purposes,
            platform=obj.organisation_id is None,
        ),
        call=lambda o, f: services.dsr_execute(o, params=f.params(), user=request.user),  # type: ignore[arg-type]
        done=_("Carried out; the subject was told. Close the request when nothing is left to do."),
    )


@require_POST
@require_dsr_reviewer
def close(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        name="close",
        form=CloseForm(request.POST),
        call=lambda obj, f: services.dsr_close(obj, note=f.cleaned_data.get("note") or ""),
        done=_("Closed. The evidence pack is ready below."),
    )


@require_POST
@require_dsr_reviewer
def complaint(request: HttpRequest, request_id: int) -> HttpResponse:
    created: list[DataSubjectRequest] = []

    def call(obj: DataSubjectRequest, form: ComplaintForm) -> Any:
        created.append(
            services.dsr_complaint_open(
                obj,
                details=form.cleaned_data["details"],
                created_by=request.user,  # type: ignore[arg-type]
            )
        )
        return created[-1]

    response = _act(
        request,
        request_id,
        name="complaint",
        form=ComplaintForm(request.POST),
        call=call,
        done=_("Complaint opened as a new request, due in 5 working days."),
    )
    if created:
        return redirect("dsr:detail", created[0].pk)
    return response


@require_POST
@require_dsr_reviewer
def forward(request: HttpRequest, request_id: int) -> HttpResponse:
    _request_get(request, request_id)  # 404 first: another queue's request is not found
    if not _may_platform(request):
        raise PermissionDenied("Only the platform DPO forwards requests.")
    return _act(
        request,
        request_id,
        name="forward",
        form=ForwardForm(request.POST),
        call=lambda obj, f: services.dsr_forward(obj, organisation=f.cleaned_data["organisation"]),
        done=_("Forwarded to the clinic; the subject was told."),
    )


@require_POST
@require_dsr_reviewer
def notice_sent(request: HttpRequest, request_id: int, notice_id: int) -> HttpResponse:
    obj = _request_get(request, request_id)
    get_object_or_404(DsrNotice, pk=notice_id, request=obj)
    try:
        services.dsr_notice_staff_sent(notice_id, request=obj)
    except services.DsrConflict as exc:
        flash.warning(request, str(exc))
    else:
        flash.success(request, _("Marked as sent."))
    return redirect("dsr:detail", obj.pk)


# --- files ----------------------------------------------------------------------------------------


def _file_response(stored: Any, filename: str, content_type: str) -> FileResponse:
    response = FileResponse(
        stored.storage.open(str(stored.name), "rb"),
        as_attachment=True,
        filename=filename,
        content_type=content_type,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_dsr_reviewer
def attachment_download(
    request: HttpRequest, request_id: int, attachment_id: int
) -> HttpResponseBase:
    """A letter, evidence or information the subject sent: personal data, so access-logged."""
    obj = _request_get(request, request_id)
    attachment = get_object_or_404(DsrAttachment, pk=attachment_id, request=obj)
    document = f"dsr_attachment:{attachment.pk}"
    if obj.organisation is not None:
        access_log_record(
            organisation=obj.organisation,
            subject_type="dsr_request",
            subject_id=obj.pk,
            action=AccessAction.DOWNLOAD,
            what=[document],
            purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
        )
    else:
        audit_record(
            action="dsr.attachment_downloaded",
            organisation=None,
            object_type="dsr.DataSubjectRequest",
            object_id=obj.pk,
            details={"attachment_id": attachment.pk},
        )
    name = attachment.original_name or f"attachment-{attachment.pk}"
    return _file_response(attachment.stored_file, name, attachment.content_type)


@require_dsr_reviewer
def evidence_download(request: HttpRequest, request_id: int, artifact_id: int) -> HttpResponseBase:
    """The evidence pack of a request (DSR-14); it holds no personal data. The subject's own
    copies (access, portability) are fetched through the link in their notice, except when the
    answer goes by letter: then the DPO downloads the copy to enclose it, and that is
    access-logged as a disclosure for the request."""
    obj = _request_get(request, request_id)
    artifact = get_object_or_404(DsrArtifact, pk=artifact_id, request=obj)
    subject_copy = artifact.kind != ArtifactKind.EVIDENCE_PACK
    if subject_copy and obj.reply_channel != ReplyChannel.LETTER:
        raise Http404("The person fetches this copy through the link in their notice.")
    if not artifact.stored_file or artifact.removed_at is not None:
        flash.warning(request, _("This file is no longer kept."))
        return redirect("dsr:detail", obj.pk)
    if subject_copy:
        access_log_record(
            organisation=obj.organisation,
            subject_type="contact" if artifact.contact_id else "dsr_request",
            subject_id=artifact.contact_id or obj.pk,
            action=AccessAction.DOWNLOAD,
            what=[str(artifact.kind)],
            purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
        )
        name = f"{obj.reference}-{artifact.kind}.zip"
    else:
        name = f"{obj.reference}-evidence.zip"
    return _file_response(artifact.stored_file, name, "application/zip")


# --- staff entry ----------------------------------------------------------------------------------


@upload_limit(_upload_max)
@require_dsr_reviewer
def new(request: HttpRequest) -> HttpResponse:
    """A request that reached the clinic by letter, phone, e-mail or in person (DSR-1): into
    the clinic DPO's queue, or the platform's for the platform DPO (``?queue=platform`` for a
    person who is both)."""
    platform = not _may_clinic(request) or (
        _may_platform(request) and request.GET.get("queue") == "platform"
    )
    organisation = None if platform else getattr(request, "organisation", None)
    if request.method == "POST":
        form = StaffEntryForm(request.POST, request.FILES, platform=platform)
        if form.is_valid():
            data = form.cleaned_data
            try:
                obj = services.dsr_receive(
                    organisation=organisation,
                    subject_kind=data.get("subject_kind") or SubjectKind.CONTACT,
                    type=data["type"],
                    channel=data["channel"],
                    subject=form.subject(),
                    received_at=form.received_at(),
                    details=data.get("details") or "",
                    language=data["language"],
                    reply_channel=data.get("reply_channel") or "",
                    created_by=request.user,  # type: ignore[arg-type]
                    original=data.get("original"),
                )
            except services.DsrInvalid as exc:
                form.add_service_errors(exc.errors)
            else:
                flash.success(
                    request,
                    _("Request %(reference)s recorded; due on %(due)s.")
                    % {"reference": obj.reference, "due": obj.due_on.strftime("%d.%m.%Y")},
                )
                return redirect("dsr:detail", obj.pk)
    else:
        language = organisation.default_language if organisation is not None else "sl"
        form = StaffEntryForm(
            initial={"language": language if language in ("sl", "en") else "sl"},
            platform=platform,
        )
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "dsr/new.html", {"form": form, "platform": platform}, status=status)
