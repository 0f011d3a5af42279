"""Staff pages of campaigns (MSG-2, MSG-4, MSG-10): list, audiences, the builder with its live
count and previews, a campaign's page with its history and actions, the approval queue, results.

Thin: the request in, one service call, a page out. The services check the state machine, the four
eyes and audit each step; a view only decides which buttons to show, and says why one is missing.
Nothing here names a patient: counts and sample text only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from campaigns.audiences import AudienceCount, AudienceInvalid, audience_count
from campaigns.forms import (
    CHANNEL_LABELS,
    LANGUAGE_NAMES,
    AudienceForm,
    CampaignForm,
    NoteForm,
    StateFilterForm,
)
from campaigns.links import click_token_make, click_url
from campaigns.models import FINAL_STATES, Audience, Campaign, CampaignStep, State
from campaigns.services import (
    ApprovalRefused,
    CampaignInvalid,
    CampaignStateError,
    audience_save,
    campaign_approve,
    campaign_cancel,
    campaign_create,
    campaign_pause,
    campaign_problems,
    campaign_reject,
    campaign_resume,
    campaign_submit,
    campaign_update,
    campaign_withdraw_submission,
)
from carely.orgs.permissions import request_may, require
from carely.orgs.roles import Perm
from consent.models import Purpose
from messaging.models import WAITING, Kind, Message, MessageTemplate
from messaging.models import Status as MessageStatus
from messaging.views import template_preview

# Each refusal code in words a receptionist uses; the codes are consent.eligibility's and
# dispatch's (campaigns.audiences.EXCLUSION_ORDER).
REASON_WORDS = {
    "organisation_suspended": _lazy("the clinic's account is suspended"),
    "erased": _lazy("erased"),
    "restricted": _lazy("processing restricted"),
    "objection": _lazy("objected to marketing"),
    "suppressed": _lazy("on the do-not-contact list"),
    "withdrawn": _lazy("withdrew consent"),
    "lapsed": _lazy("consent expired"),
    "minor_without_guardian_consent": _lazy("under 18 without a guardian's consent"),
    "no_consent": _lazy("no consent"),
    "no_address": _lazy("no phone number or e-mail for the channel"),
    "no_relationship": _lazy("no current relationship with the clinic"),
    "whatsapp_session_closed": _lazy("WhatsApp conversation closed"),
    "frequency_cap": _lazy("already had enough marketing messages this month"),
    "no_template": _lazy("no template in their language"),
    "invalid": _lazy("address not valid"),
}
# Mid-sentence ("202 by e-mail"): the select's "E-mail" starts a line.
CHANNEL_IN_SENTENCE = {"whatsapp": "WhatsApp", "sms": "SMS", "email": _lazy("e-mail")}
STATE_WORDS = {
    State.DRAFT: _lazy("Draft"),
    State.AWAITING_APPROVAL: _lazy("Awaiting approval"),
    State.SCHEDULED: _lazy("Scheduled"),
    State.SENDING: _lazy("Sending"),
    State.PAUSED: _lazy("Paused"),
    State.COMPLETED: _lazy("Completed"),
    State.CANCELLED: _lazy("Cancelled"),
}
STEP_WORDS = {
    "created": _lazy("created"),
    "submitted": _lazy("submitted for approval"),
    "approved": _lazy("approved"),
    "rejected": _lazy("sent back"),
    "withdrawn": _lazy("taken back to draft"),
    "started": _lazy("started sending"),
    "paused": _lazy("paused"),
    "resumed": _lazy("resumed"),
    "cancelled": _lazy("cancelled"),
    "completed": _lazy("completed"),
}
# Handed to the provider: the "sent" of the progress bar.
_SENT = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERABLE,
    MessageStatus.EXPIRED,
    MessageStatus.REJECTED,
)


def _organisation(request: HttpRequest) -> Any:
    return getattr(request, "organisation", None)


def _campaigns(request: HttpRequest) -> QuerySet[Campaign]:
    return Campaign.objects.for_organisation(_organisation(request))


def _campaign_get(request: HttpRequest, campaign_id: int) -> Campaign:
    """The organisation's campaign, or 404 (another organisation's id is not found here)."""
    return get_object_or_404(
        _campaigns(request).select_related("audience", "created_by", "submitted_by"),
        pk=campaign_id,
    )


def _n(value: int) -> str:
    return number_format(value, force_grouping=True)


def count_sentence(count: AudienceCount, channels: list[str]) -> str:
    """ "1,284 contacts match; 1,102 may receive it: 900 by WhatsApp, 202 by SMS; 182 excluded:
    140 no consent, 25 on the do-not-contact list." Numbers and reasons only."""
    text = ngettext("%(n)s contact matches", "%(n)s contacts match", count.matched) % {
        "n": _n(count.matched)
    }
    by = ", ".join(
        _("%(n)s by %(channel)s")
        % {"n": _n(count.by_channel.get(c, 0)), "channel": CHANNEL_IN_SENTENCE[c]}
        for c in channels
        if c in CHANNEL_IN_SENTENCE
    )
    text += "; " + _("%(n)s may receive it") % {"n": _n(count.eligible)}
    if by:
        text += ": " + by
    if count.excluded_total:
        reasons = ", ".join(
            f"{_n(n)} {REASON_WORDS.get(code, code)}"
            for code, n in sorted(count.excluded.items(), key=lambda kv: -kv[1])
        )
        text += "; " + _("%(n)s excluded") % {"n": _n(count.excluded_total)} + ": " + reasons
    return text + "."


def _count_for(
    organisation: Any, filters: dict[str, Any], purpose: str, channels: list[str]
) -> tuple[AudienceCount | None, str]:
    try:
        count = audience_count(
            organisation=organisation, filters=filters, purpose=purpose, channels=channels
        )
    except AudienceInvalid as exc:
        return None, " ".join(exc.problems.values())
    return count, count_sentence(count, channels)


# --- list ----------------------------------------------------------------------------------------
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_list(request: HttpRequest) -> HttpResponse:
    form = StateFilterForm(request.GET or None)
    rows = _campaigns(request).select_related("audience", "approved_by", "submitted_by")
    if form.is_valid() and form.cleaned_data.get("state"):
        rows = rows.filter(state=form.cleaned_data["state"])
    context = {
        "form": form,
        "rows": [
            {
                "c": c,
                "state_label": STATE_WORDS[State(c.state)],
                "channels": " → ".join(str(CHANNEL_LABELS.get(ch, ch)) for ch in c.channels),
            }
            for c in rows[:200]
        ],
        "can_approve": request_may(request, Perm.CAMPAIGNS_APPROVE),
    }
    return render(request, "campaigns/campaign_list.html", context)


# --- audiences -----------------------------------------------------------------------------------
@require(Perm.CAMPAIGNS_MANAGE)
def audience_list(request: HttpRequest) -> HttpResponse:
    audiences = Audience.objects.for_organisation(_organisation(request))
    return render(request, "campaigns/audience_list.html", {"audiences": list(audiences)})


def _audience_form(request: HttpRequest, audience: Audience | None) -> HttpResponse:
    organisation = _organisation(request)
    if request.method == "POST":
        form = AudienceForm(request.POST, organisation=organisation)
        if form.is_valid():
            try:
                saved = audience_save(
                    organisation=organisation,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data.get("description") or "",
                    filters=form.filters(),
                    actor=request.user,  # type: ignore[arg-type]
                    audience=audience,
                )
            except CampaignInvalid as exc:
                form.problems_show(exc.problems)
            else:
                flash.success(request, _("Audience %(name)s saved.") % {"name": saved.name})
                return redirect("campaigns:audience_list")
    else:
        initial = AudienceForm.initial_from(audience) if audience else {}
        form = AudienceForm(initial=initial, organisation=organisation)
    return render(request, "campaigns/audience_form.html", {"form": form, "audience": audience})


@require(Perm.CAMPAIGNS_MANAGE)
def audience_create(request: HttpRequest) -> HttpResponse:
    return _audience_form(request, None)


@require(Perm.CAMPAIGNS_MANAGE)
def audience_edit(request: HttpRequest, audience_id: int) -> HttpResponse:
    audience = get_object_or_404(
        Audience.objects.for_organisation(_organisation(request)), pk=audience_id
    )
    return _audience_form(request, audience)


# --- the builder ---------------------------------------------------------------------------------
def _sample_tracked_link() -> str:
    """A click-redirect link as long as a real one in a large clinic (7-digit ids)."""
    return click_url(click_token_make(999_999, 9_999_999, 1))


def _previews(organisation: Any, template_ids: list[int]) -> list[dict[str, Any]]:
    templates = MessageTemplate.objects.for_organisation(organisation).filter(
        pk__in=template_ids, kind=Kind.MARKETING
    )
    return [
        {
            "template": t,
            "language_name": LANGUAGE_NAMES.get(t.language[:2], t.language),
            "channel_name": CHANNEL_LABELS.get(t.channel, t.channel),
            "preview": template_preview(
                t, {}, organisation=organisation, tracked_link=_sample_tracked_link()
            ),
        }
        for t in templates.order_by("channel", "language")
    ]


def _builder(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    organisation = _organisation(request)
    if request.method == "POST":
        form = CampaignForm(request.POST, organisation=organisation)
        if form.is_valid():
            saved = _builder_save(request, form, campaign)
            if saved is not None:
                flash.success(request, _("Draft saved."))
                return redirect("campaigns:detail", saved.pk)
    else:
        initial = CampaignForm.initial_from(campaign, _tz(organisation)) if campaign else {}
        form = CampaignForm(initial=initial, organisation=organisation)
    chosen = [
        int(v)
        for _c, _lang, field in form.template_fields()
        if (v := str(field.value() or "")).isdigit()
    ]
    count, count_text = None, ""
    audience_id = str(form["audience"].value() or "")
    channels = [str(form[f"channel_{n}"].value() or "") for n in (1, 2, 3)]
    channels = [c for c in channels if c]
    if audience_id.isdigit() and channels and form["purpose"].value():
        audience = Audience.objects.for_organisation(organisation).filter(pk=audience_id).first()
        if audience is not None:
            count, count_text = _count_for(
                organisation, audience.filters, str(form["purpose"].value()), channels
            )
    context = {
        "form": form,
        "campaign": campaign,
        "previews": _previews(organisation, chosen),
        "count": count,
        "count_text": count_text,
        "time_zone": organisation.time_zone,
    }
    return render(request, "campaigns/campaign_form.html", context)


def _tz(organisation: Any) -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo(organisation.time_zone or "Europe/Ljubljana")


def _builder_save(
    request: HttpRequest, form: CampaignForm, campaign: Campaign | None
) -> Campaign | None:
    fields = form.fields_for_service()
    templates = form.templates_for_service()
    try:
        if campaign is None:
            return campaign_create(
                organisation=_organisation(request),
                actor=request.user,  # type: ignore[arg-type]
                templates=templates,
                **fields,
            )
        return campaign_update(
            campaign=campaign,
            actor=request.user,  # type: ignore[arg-type]
            templates=templates,
            **fields,
        )
    except CampaignInvalid as exc:
        form.problems_show(exc.problems)
    except CampaignStateError as exc:
        form.add_error(None, str(exc))
    return None


@require(Perm.CAMPAIGNS_MANAGE)
def campaign_new(request: HttpRequest) -> HttpResponse:
    return _builder(request, None)


@require(Perm.CAMPAIGNS_MANAGE)
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_get(request, campaign_id)
    if campaign.state != State.DRAFT:
        flash.warning(
            request,
            _(
                "Only a draft can be changed. This campaign is %(state)s; "
                "to change it, send it back to draft first."
            )
            % {"state": STATE_WORDS[State(campaign.state)]},
        )
        return redirect("campaigns:detail", campaign.pk)
    return _builder(request, campaign)


@require_GET
@require(Perm.CAMPAIGNS_MANAGE)
def audience_count_json(request: HttpRequest) -> JsonResponse:
    """The builder's live count: numbers and the sentence that reads them, never a name."""
    organisation = _organisation(request)
    audience_id = request.GET.get("audience", "")
    purpose = request.GET.get("purpose", "")
    channels = [c for c in request.GET.get("channels", "").split(",") if c]
    audience = (
        Audience.objects.for_organisation(organisation).filter(pk=audience_id).first()
        if audience_id.isdigit()
        else None
    )
    if audience is None:
        return JsonResponse(
            {"error": _("Choose an audience of this organisation to see how many it reaches.")},
            status=400,
        )
    count, text = _count_for(organisation, audience.filters, purpose, channels)
    if count is None:
        return JsonResponse({"error": text}, status=400)
    return JsonResponse({**count.as_dict(), "text": text})


@require_GET
@require(Perm.CAMPAIGNS_MANAGE)
def template_preview_json(request: HttpRequest) -> JsonResponse:
    """One marketing template rendered with sample values (never a patient's), and for SMS its
    encoding and parts, for the builder's preview."""
    template_id = request.GET.get("template", "")
    template = get_object_or_404(
        MessageTemplate.objects.for_organisation(_organisation(request)).filter(
            kind=Kind.MARKETING
        ),
        pk=int(template_id) if template_id.isdigit() else 0,
    )
    preview = template_preview(
        template, {}, organisation=_organisation(request), tracked_link=_sample_tracked_link()
    )
    out: dict[str, Any] = {
        "subject": preview.subject,
        "body": preview.body,
        "problems": preview.problems or [],
    }
    if preview.encoding is not None:
        out.update(
            encoding=preview.encoding.encoding,
            parts=preview.encoding.parts,
            length=preview.encoding.length,
            non_gsm=list(preview.encoding.non_gsm),
            sms_text=sms_summary(preview.encoding),
        )
    return JsonResponse(out)


def sms_summary(encoding: Any) -> str:
    """ "GSM-7, 187 characters: 2 parts", as the page's own preview says it."""
    text = ngettext(
        "%(enc)s, %(n)s characters: %(parts)s part",
        "%(enc)s, %(n)s characters: %(parts)s parts",
        encoding.parts,
    ) % {"enc": encoding.encoding, "n": encoding.length, "parts": encoding.parts}
    if encoding.non_gsm:
        text += " · " + _("letters forcing UCS-2:") + " " + " ".join(encoding.non_gsm)
    return text


# --- one campaign --------------------------------------------------------------------------------
def _stoppable(campaign: Campaign) -> int:
    """Messages of the campaign that no worker has handed over yet: what pause or cancel stops."""
    return Message.objects.filter(
        # The outbox's unique index leads with (organisation, dedupe key): no table scan.
        organisation_id=campaign.organisation_id,
        dedupe_key=campaign.dedupe_key,
        campaign_id=campaign.pk,
        status__in=[*WAITING, MessageStatus.HELD],
    ).count()


def _progress(campaign: Campaign) -> dict[str, Any]:
    sent = Message.objects.filter(
        # The outbox's unique index leads with (organisation, dedupe key): the progress bar
        # polls this, and the outbox grows with every campaign ever sent.
        organisation_id=campaign.organisation_id,
        dedupe_key=campaign.dedupe_key,
        campaign_id=campaign.pk,
        status__in=_SENT,
    ).count()
    total, queued = campaign.audience_total, campaign.queued
    return {
        "state": campaign.state,
        "state_label": str(STATE_WORDS[State(campaign.state)]),
        "audience_total": total,
        "queued": queued,
        "sent": sent,
        "queued_percent": round(100 * queued / total) if total else 0,
        "sent_percent": round(100 * sent / queued) if queued else 0,
        "text": _("%(queued)s of %(total)s queued; %(sent)s of %(queued)s sent.")
        % {"queued": _n(queued), "total": _n(total), "sent": _n(sent)},
        "done": campaign.state in FINAL_STATES,
    }


def _actions(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    """Which buttons the page shows, and the reason a person cannot approve, in words."""
    user_id = request.user.pk
    may_approve = request_may(request, Perm.CAMPAIGNS_APPROVE)
    is_author = user_id in {campaign.created_by_id, campaign.submitted_by_id}
    awaiting = campaign.state == State.AWAITING_APPROVAL
    why_not_approve = ""
    if awaiting and is_author:
        why_not_approve = _(
            "You prepared this campaign, so someone else must approve it (four eyes): "
            "an organisation admin who did not write it."
        )
    elif awaiting and not may_approve:
        why_not_approve = _("Your role cannot approve campaigns; an organisation admin can.")
    return {
        "edit": campaign.state == State.DRAFT,
        "submit": campaign.state == State.DRAFT,
        "withdraw": awaiting and is_author,
        "approve": awaiting and may_approve and not is_author,
        "reject": awaiting and may_approve and not is_author,
        "why_not_approve": why_not_approve,
        "pause": campaign.state in (State.SCHEDULED, State.SENDING),
        "resume": campaign.state == State.PAUSED,
        "cancel": campaign.state not in FINAL_STATES,
    }


@require(Perm.CAMPAIGNS_MANAGE)
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_get(request, campaign_id)
    steps = CampaignStep.objects.filter(campaign=campaign).select_related("actor")
    templates = list(campaign.templates.select_related("template").order_by("channel", "language"))
    count_text = ""
    if campaign.state in (State.DRAFT, State.AWAITING_APPROVAL) and campaign.channels:
        filters = (
            campaign.audience_filters
            if campaign.state == State.AWAITING_APPROVAL
            else (campaign.audience.filters if campaign.audience else None)
        )
        if filters is not None:
            _count, count_text = _count_for(
                campaign.organisation, filters, campaign.purpose, list(campaign.channels)
            )
    context = {
        "campaign": campaign,
        "state_label": STATE_WORDS[State(campaign.state)],
        "steps": [
            {"step": s, "what": STEP_WORDS.get(s.kind, s.kind)} for s in steps.order_by("at", "pk")
        ],
        "templates": templates,
        "previews": _previews(campaign.organisation, [t.template_id for t in templates]),
        "problems": campaign_problems(campaign) if campaign.state == State.DRAFT else {},
        "count_text": count_text,
        "actions": _actions(request, campaign),
        "progress": _progress(campaign) if campaign.started_at else None,
        "polling": campaign.state in (State.SCHEDULED, State.SENDING),
        "channel_labels": [CHANNEL_LABELS.get(c, c) for c in campaign.channels],
        "exclusions": [
            (REASON_WORDS.get(code, code), n)
            for code, n in sorted((campaign.exclusions or {}).items(), key=lambda kv: -kv[1])
        ],
        "reject_form": NoteForm(),
        "purpose_name": Purpose.objects.for_organisation(campaign.organisation)
        .filter(slug=campaign.purpose)
        .values_list("name", flat=True)
        .first()
        or campaign.purpose,
        "language_name": LANGUAGE_NAMES.get(campaign.fallback_language, campaign.fallback_language),
        "time_zone": campaign.organisation.time_zone,
    }
    return render(request, "campaigns/campaign_detail.html", context)


@require_GET
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_progress_json(request: HttpRequest, campaign_id: int) -> JsonResponse:
    return JsonResponse(_progress(_campaign_get(request, campaign_id)))


def _act(request: HttpRequest, campaign_id: int, action: Any, done: str, **kw: Any) -> HttpResponse:
    campaign = _campaign_get(request, campaign_id)
    try:
        action(campaign=campaign, actor=request.user, **kw)
    except CampaignInvalid as exc:
        for field, problem in exc.problems.items():
            flash.error(request, f"{field}: {problem}")
    except (CampaignStateError, ApprovalRefused) as exc:
        flash.error(request, str(exc))
    else:
        flash.success(request, done)
    return redirect("campaigns:detail", campaign.pk)


@require_POST
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_submit_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    return _act(
        request, campaign_id, campaign_submit, _("Submitted: someone else will now approve it.")
    )


@require_POST
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_withdraw_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    return _act(
        request,
        campaign_id,
        campaign_withdraw_submission,
        _("Taken back to draft; submit it again when it is ready."),
    )


@require_POST
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_approve_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    # No Perm.CAMPAIGNS_APPROVE in the decorator: the service refuses with the reason in words
    # (the role, or four eyes), which the page then shows, rather than a bare 403.
    return _act(request, campaign_id, campaign_approve, _("Approved: it will go out as scheduled."))


@require_POST
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_reject_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    return _act(
        request,
        campaign_id,
        campaign_reject,
        _("Sent back to the author with your note."),
        note=request.POST.get("note", ""),
    )


@require_POST
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_pause_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    return _act(
        request,
        campaign_id,
        campaign_pause,
        _("Paused: messages not yet handed to the provider wait until you resume."),
    )


@require_POST
@require(Perm.CAMPAIGNS_MANAGE)
def campaign_resume_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    return _act(request, campaign_id, campaign_resume, _("Resumed."))


@require(Perm.CAMPAIGNS_MANAGE)
def campaign_cancel_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """GET: the confirm step, naming how many messages it stops. POST: cancel."""
    if request.method == "POST":
        return _act(
            request,
            campaign_id,
            campaign_cancel,
            _("Cancelled. Messages the provider already had could not be called back."),
            note=request.POST.get("note", ""),
        )
    campaign = _campaign_get(request, campaign_id)
    if campaign.state in FINAL_STATES:
        flash.error(request, _("This campaign has already ended; there is nothing to cancel."))
        return redirect("campaigns:detail", campaign.pk)
    context = {
        "campaign": campaign,
        "stoppable": _stoppable(campaign),
        "not_yet_queued": max(campaign.audience_total - campaign.queued, 0)
        if campaign.started_at
        else None,
    }
    return render(request, "campaigns/campaign_cancel.html", context)


# --- approvals -----------------------------------------------------------------------------------
@require(Perm.CAMPAIGNS_APPROVE)
def approval_queue(request: HttpRequest) -> HttpResponse:
    waiting = (
        _campaigns(request)
        .filter(state=State.AWAITING_APPROVAL)
        .select_related("submitted_by", "created_by")
    )
    rows = []
    for campaign in waiting.order_by("submitted_at", "pk"):
        _count, text = _count_for(
            campaign.organisation,
            campaign.audience_filters,
            campaign.purpose,
            list(campaign.channels),
        )
        rows.append(
            {
                "campaign": campaign,
                "count_text": text,
                "own": request.user.pk in {campaign.created_by_id, campaign.submitted_by_id},
            }
        )
    return render(request, "campaigns/approval_queue.html", {"rows": rows})


# --- results -------------------------------------------------------------------------------------
FUNNEL_WORDS = {
    "targeted": _lazy("targeted"),
    "queued": _lazy("queued"),
    "sent": _lazy("sent"),
    "delivered": _lazy("delivered"),
    "clicked": _lazy("clicked a link"),
    "converted": _lazy("acted (booked, replied)"),
}
METRIC_WORDS = {
    "queued": _lazy("Queued"),
    "sent": _lazy("Sent"),
    "delivered": _lazy("Delivered"),
    "undeliverable": _lazy("Not delivered"),
    "refused": _lazy("Stopped at sending"),
    "cancelled": _lazy("Cancelled"),
    "clicked": _lazy("Clicked"),
    "conversions": _lazy("Acted"),
    "cost_segments": _lazy("SMS parts / messages billed"),
}
# The charts' drawing area in SVG user units; the SVG scales to the page's width.
_FUNNEL_W, _FUNNEL_LABEL, _FUNNEL_ROW = 640, 170, 34
_SERIES_W, _SERIES_H, _SERIES_LEFT, _SERIES_BOTTOM = 720, 240, 48, 36


def _num(cell: Any) -> int:
    """A masked cell ("<5") draws as a stub, not as a number someone could measure."""
    return cell if isinstance(cell, int) else 0


def funnel_chart(funnel: list[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars, one per step, each labelled with its (masked) count."""
    top = max([_num(row["count"]) for row in funnel] or [0]) or 1
    room = _FUNNEL_W - _FUNNEL_LABEL - 70
    rows = []
    for n, row in enumerate(funnel):
        value = row["count"]
        width = round(room * _num(value) / top) if _num(value) else (4 if value else 0)
        rows.append(
            {
                "label": FUNNEL_WORDS.get(row["step"], row["step"]),
                "value": value if isinstance(value, str) else _n(value),
                "y": n * _FUNNEL_ROW + 4,
                "text_y": n * _FUNNEL_ROW + 22,
                "width": width,
                "masked": isinstance(value, str),
                "value_x": _FUNNEL_LABEL + width + 8,
            }
        )
    return {
        "rows": rows,
        "width": _FUNNEL_W,
        "height": len(rows) * _FUNNEL_ROW + 8,
        "bar_x": _FUNNEL_LABEL,
        "label_x": _FUNNEL_LABEL - 10,
    }


def series_chart(series: list[dict[str, Any]], *, tz: Any) -> dict[str, Any]:
    """Sent and delivered per bucket (hours, then days) as paired columns, times in the clinic's
    zone; a masked bucket draws a short grey stub."""
    if not series:
        return {"bars": [], "ticks": []}
    top = max([max(_num(b["sent"]), _num(b["delivered"])) for b in series] or [0]) or 1
    plot_w = _SERIES_W - _SERIES_LEFT - 8
    plot_h = _SERIES_H - _SERIES_BOTTOM - 12
    slot = plot_w / len(series)
    bar_w = max(min(slot / 2 - 1, 24), 1)
    bars, ticks, rows = [], [], []
    every = max(1, round(len(series) / 8))
    for i, bucket in enumerate(series):
        start = bucket["start"].astimezone(tz)
        when = (
            start.strftime("%d.%m. %H:%M")
            if bucket["width"] == "hour"
            else start.strftime("%d.%m.")
        )
        rows.append({"when": when, "sent": bucket["sent"], "delivered": bucket["delivered"]})
        for k, key in enumerate(("sent", "delivered")):
            value = bucket[key]
            height = plot_h * _num(value) / top if _num(value) else (3 if value else 0)
            if not height:
                continue
            bars.append(
                {
                    "x": round(_SERIES_LEFT + i * slot + k * bar_w + 1, 1),
                    "y": round(12 + plot_h - height, 1),
                    "w": round(bar_w, 1),
                    "h": round(height, 1),
                    "kind": "masked" if isinstance(value, str) else key,
                    "masked": isinstance(value, str),
                    "label_x": round(_SERIES_LEFT + i * slot + k * bar_w + 1 + bar_w / 2, 1),
                    "label_y": round(12 + plot_h - height - 3, 1),
                    "title": f"{when}: {value} {FUNNEL_WORDS[key]}",
                }
            )
        if i % every == 0:
            ticks.append({"x": round(_SERIES_LEFT + i * slot + slot / 2, 1), "label": when})
    return {
        "bars": bars,
        "ticks": ticks,
        "rows": rows,
        "width": _SERIES_W,
        "height": _SERIES_H,
        "left": _SERIES_LEFT,
        "base_y": 12 + plot_h,
        "top_label": _n(top),
        "tick_y": 12 + plot_h + 18,
        "right": _SERIES_W - 8,
    }


@require(Perm.CAMPAIGNS_MANAGE)
def campaign_results(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """What the campaign did, with every cell of 1-4 people shown as "<5" (MSG-10)."""
    from campaigns.stats import campaign_stats

    campaign = _campaign_get(request, campaign_id)
    stats = campaign_stats(campaign).masked()
    counts = stats["counts"]
    channels = list(stats.get("by_channel") or {})
    context = {
        "campaign": campaign,
        "state_label": STATE_WORDS[State(campaign.state)],
        "counts": counts,
        "headline": [
            (_("Targeted"), counts["targeted"]),
            (_("Sent"), counts["sent"]),
            (_("Delivered"), counts["delivered"]),
            (_("Not delivered"), counts["undeliverable"]),
            (_("Clicked"), counts["clicked"]),
            (_("Unsubscribed"), counts["unsubscribed"]),
            (_("Acted"), counts["conversions"]),
            (_("SMS parts"), counts["cost_segments"]),
        ],
        "excluded": [
            (REASON_WORDS.get(code, code), n) for code, n in (stats.get("excluded") or {}).items()
        ],
        "funnel": funnel_chart(stats.get("funnel") or []),
        "series": series_chart(stats.get("series") or [], tz=_tz(campaign.organisation)),
        "channel_names": [CHANNEL_LABELS.get(c, c) for c in channels],
        "channel_rows": [
            (words, [stats["by_channel"][c][metric] for c in channels])
            for metric, words in METRIC_WORDS.items()
        ],
        "time_zone": campaign.organisation.time_zone,
        "computed_at": stats.get("computed_at"),
    }
    return render(request, "campaigns/campaign_results.html", context)
