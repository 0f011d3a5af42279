"""Every write of the campaigns app except materialisation (``campaigns.materialise``).

The state machine (MSG-2, MSG-4)::

    draft --submit--> awaiting_approval --approve (someone else, with the role)--> scheduled
      ^                      |                                                     |
      +------reject----------+                                       due: start -> sending
    scheduled/sending --pause--> paused --resume--> scheduled/sending
    sending --(materialised, every message ended)--> completed
    anything not final --cancel--> cancelled

Only a draft can be edited; submitting copies the audience's filter into the campaign, so what
the approver approved is what is sent. Pause holds the campaign's messages that no worker has
handed to the provider (status ``held``); cancel ends them (``cancelled``). Every transition is
an append-only ``CampaignStep`` and an audit event.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.audiences import AudienceInvalid, filters_clean
from campaigns.models import (
    FINAL_STATES,
    Audience,
    Campaign,
    CampaignStep,
    CampaignTemplate,
    Schedule,
    State,
)
from carely.audit.services import audit_record
from carely.orgs.models import Membership, Organisation, User
from carely.orgs.permissions import may
from carely.orgs.roles import Perm
from carely.orgs.scoping import require_organisation
from consent.models import CONCRETE_CHANNELS, Purpose
from messaging.models import WAITING, EventSource, Kind, Message, MessageEvent, MessageTemplate
from messaging.models import Status as MessageStatus


class CampaignInvalid(ValueError):
    """What is wrong with a campaign, per field, with what to do."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


class CampaignStateError(ValueError):
    """The transition is not allowed from the campaign's current state."""


class ApprovalRefused(PermissionError):
    """Four eyes: the author cannot approve, and only a role with the right may."""


logger = logging.getLogger("carely.campaigns")

# The shortest window a spread send may have: shorter is "send now" with extra steps.
MIN_WINDOW = dt.timedelta(minutes=10)


# --- audiences -----------------------------------------------------------------------------------
def audience_save(
    *,
    organisation: Organisation,
    name: str,
    filters: Mapping[str, Any] | None,
    description: str = "",
    actor: User | None = None,
    audience: Audience | None = None,
) -> Audience:
    organisation = require_organisation(organisation)
    name = (name or "").strip()
    problems: dict[str, str] = {}
    if not name:
        problems["name"] = "Give the audience a name the team will recognise."
    try:
        clean = filters_clean(filters, organisation=organisation)
    except AudienceInvalid as exc:
        problems.update({f"filters.{k}": v for k, v in exc.problems.items()})
        clean = {}
    if problems:
        raise CampaignInvalid(problems)
    now = timezone.now()
    with transaction.atomic():
        if audience is None:
            audience = Audience.objects.create(
                organisation=organisation,
                name=name[:120],
                description=description,
                filters=clean,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            action = "audience.created"
        else:
            if audience.organisation_id != organisation.pk:
                raise Audience.DoesNotExist
            audience.name, audience.description = name[:120], description
            audience.filters, audience.updated_at = clean, now
            audience.save(update_fields=["name", "description", "filters", "updated_at"])
            action = "audience.updated"
        audit_record(
            action=action,
            organisation=organisation,
            object_type="audience",
            object_id=audience.pk,
            details={"fields": sorted(clean)},
        )
    return audience


# --- building a campaign -------------------------------------------------------------------------
_EDITABLE = (
    "name",
    "purpose",
    "channels",
    "fallback_language",
    "audience",
    "schedule",
    "send_at",
    "send_until",
    "ai_drafted",
)


def _clean_fields(
    organisation: Organisation, fields: Mapping[str, Any], problems: dict[str, str]
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not name:
            problems["name"] = "Give the campaign a name."
        clean["name"] = name[:150]
    if "purpose" in fields:
        slug = fields["purpose"] or ""
        if not Purpose.objects.for_organisation(organisation).filter(slug=slug).exists():
            slugs = Purpose.objects.for_organisation(organisation).values_list("slug", flat=True)
            problems["purpose"] = f"No purpose {slug!r}; use one of " + ", ".join(slugs)
        clean["purpose"] = slug
    if "channels" in fields:
        channels = fields["channels"] or []
        if isinstance(channels, str):
            channels = [c.strip() for c in channels.split(",") if c.strip()]
        wrong = [c for c in channels if c not in CONCRETE_CHANNELS]
        if wrong or not channels:
            problems["channels"] = (
                "List one or more of whatsapp, sms, email in the order to try them."
            )
        elif len(set(channels)) != len(channels):
            problems["channels"] = "Name each channel once."
        clean["channels"] = list(channels)
    if "fallback_language" in fields:
        clean["fallback_language"] = (fields["fallback_language"] or "sl")[:2].lower()
    if "audience" in fields:
        audience = fields["audience"]
        if isinstance(audience, int):
            audience = Audience.objects.for_organisation(organisation).filter(pk=audience).first()
            if audience is None:
                problems["audience"] = "No such audience in this organisation."
        elif audience is not None and audience.organisation_id != organisation.pk:
            problems["audience"] = "No such audience in this organisation."
            audience = None
        clean["audience"] = audience
    for key in ("schedule", "send_at", "send_until", "ai_drafted"):
        if key in fields:
            clean[key] = fields[key]
    if clean.get("schedule", Schedule.NOW) not in Schedule.values:
        problems["schedule"] = "Choose now, at or window."
    return clean


def campaign_create(*, organisation: Organisation, actor: User | None, **fields: Any) -> Campaign:
    """A draft campaign. ``templates`` ({(channel, language): MessageTemplate}) may come now or
    later through ``campaign_templates_set``."""
    organisation = require_organisation(organisation)
    templates = fields.pop("templates", None)
    unknown = set(fields) - set(_EDITABLE)
    if unknown:
        raise TypeError(f"campaign_create got unknown fields {sorted(unknown)}")
    problems: dict[str, str] = {}
    clean = _clean_fields(organisation, {"channels": ["sms"], **fields}, problems)
    if problems:
        raise CampaignInvalid(problems)
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.create(
            organisation=organisation, created_by=actor, created_at=now, updated_at=now, **clean
        )
        _step(campaign, "created", "", State.DRAFT, actor)
        if templates:
            campaign_templates_set(campaign=campaign, templates=templates, actor=actor)
    return campaign


def _require_state(campaign: Campaign, *states: str, doing: str) -> None:
    if campaign.state not in states:
        raise CampaignStateError(
            f"Campaign {campaign.pk} is {campaign.get_state_display()}; it can be {doing} only "
            f"when {' or '.join(State(s).label for s in states)}."
        )


def _locked(campaign: Campaign) -> Campaign:
    """The campaign re-read under a row lock: two people acting at once serialise here."""
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def campaign_update(*, campaign: Campaign, actor: User | None, **fields: Any) -> Campaign:
    """Change a draft. A campaign awaiting approval goes back to draft first (``reject``)."""
    templates = fields.pop("templates", None)
    unknown = set(fields) - set(_EDITABLE)
    if unknown:
        raise TypeError(f"campaign_update got unknown fields {sorted(unknown)}")
    with transaction.atomic():
        campaign = _locked(campaign)
        _require_state(campaign, State.DRAFT, doing="edited")
        problems: dict[str, str] = {}
        clean = _clean_fields(campaign.organisation, fields, problems)
        if problems:
            raise CampaignInvalid(problems)
        for key, value in clean.items():
            setattr(campaign, key, value)
        campaign.updated_at = timezone.now()
        campaign.save()
        if templates is not None:
            campaign_templates_set(campaign=campaign, templates=templates, actor=actor)
        audit_record(
            action="campaign.updated",
            organisation=campaign.organisation_id,
            object_type="campaign",
            object_id=campaign.pk,
            details={"fields": sorted(clean)},
        )
    return campaign


def campaign_templates_set(
    *,
    campaign: Campaign,
    templates: Mapping[tuple[str, str], MessageTemplate | int],
    actor: User | None = None,
) -> None:
    """Replace the campaign's templates: one per (channel, language)."""
    if campaign.state != State.DRAFT:
        raise CampaignStateError("Templates can be changed only while the campaign is a draft.")
    problems: dict[str, str] = {}
    rows = []
    for (channel, language), template in templates.items():
        where = f"templates.{channel}.{language}"
        if isinstance(template, int):
            found = (
                MessageTemplate.objects.for_organisation(campaign.organisation)
                .filter(pk=template)
                .first()
            )
            if found is None:
                problems[where] = "No such template in this organisation."
                continue
            template = found
        if template.organisation_id != campaign.organisation_id:
            problems[where] = "No such template in this organisation."
            continue
        if template.kind != Kind.MARKETING:
            problems[where] = f"Template {template.name!r} is transactional, not marketing."
        elif template.channel != channel:
            problems[where] = (
                f"Template {template.name!r} is for {template.channel}, not {channel}."
            )
        elif template.retired_at is not None:
            problems[where] = (
                f"Template {template.name!r} v{template.version} was replaced; "
                "choose its current version."
            )
        rows.append(
            CampaignTemplate(
                organisation_id=campaign.organisation_id,
                campaign=campaign,
                channel=channel,
                language=language[:2].lower(),
                template=template,
            )
        )
    if problems:
        raise CampaignInvalid(problems)
    with transaction.atomic():
        CampaignTemplate.objects.filter(campaign=campaign).delete()
        CampaignTemplate.objects.bulk_create(rows)


def campaign_problems(campaign: Campaign, *, now: dt.datetime | None = None) -> dict[str, str]:
    """Everything that stops the campaign from being submitted, per field, with what to do."""
    now = now or timezone.now()
    problems: dict[str, str] = {}
    if campaign.audience is None:
        problems["audience"] = "Choose who the campaign is for."
    if not campaign.channels:
        problems["channels"] = "Choose at least one channel."
    templates = {
        (t.channel, t.language): t.template
        for t in CampaignTemplate.objects.filter(campaign=campaign).select_related("template")
    }
    for channel in campaign.channels:
        if (channel, campaign.fallback_language) not in templates:
            problems[f"templates.{channel}"] = (
                f"Add a {channel} template in {campaign.fallback_language} (the fallback "
                "language): contacts without a template in their language get that one."
            )
        if channel == "whatsapp":
            for (c, language), template in templates.items():
                if c == "whatsapp" and not template.whatsapp_template_name:
                    problems[f"templates.whatsapp.{language}"] = (
                        f"Template {template.name!r} is not registered with WhatsApp; marketing "
                        "on WhatsApp can only use a template approved by Meta."
                    )
    if campaign.schedule in (Schedule.AT, Schedule.WINDOW):
        if campaign.send_at is None:
            problems["send_at"] = "Say when to send."
        elif campaign.send_at < now:
            problems["send_at"] = "This time has passed; choose a later one or send now."
    if campaign.schedule == Schedule.WINDOW:
        if campaign.send_until is None or campaign.send_at is None:
            problems["send_until"] = "Say when the window ends."
        elif campaign.send_until - campaign.send_at < MIN_WINDOW:
            problems["send_until"] = "A spread send needs a window of at least 10 minutes."
    return problems


# --- transitions ---------------------------------------------------------------------------------
def _step(
    campaign: Campaign,
    kind: str,
    from_state: str,
    to_state: str,
    actor: User | None,
    note: str = "",
) -> None:
    CampaignStep.objects.create(
        organisation_id=campaign.organisation_id,
        campaign=campaign,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        note=note,
    )
    audit_record(
        action=f"campaign.{kind}",
        organisation=campaign.organisation_id,
        object_type="campaign",
        object_id=campaign.pk,
        details={"from": from_state, "to": to_state},
    )


def _move(
    campaign: Campaign, to_state: str, kind: str, actor: User | None, note: str = "", **extra: Any
) -> Campaign:
    from_state = campaign.state
    campaign.state = to_state
    campaign.updated_at = timezone.now()
    for key, value in extra.items():
        setattr(campaign, key, value)
    campaign.save()
    _step(campaign, kind, from_state, to_state, actor, note)
    return campaign


def campaign_submit(*, campaign: Campaign, actor: User | None) -> Campaign:
    """Ask for approval: the content, audience and schedule are frozen from here."""
    with transaction.atomic():
        campaign = _locked(campaign)
        _require_state(campaign, State.DRAFT, doing="submitted")
        problems = campaign_problems(campaign)
        if problems:
            raise CampaignInvalid(problems)
        assert campaign.audience is not None
        return _move(
            campaign,
            State.AWAITING_APPROVAL,
            "submitted",
            actor,
            submitted_by=actor,
            submitted_at=timezone.now(),
            audience_filters=dict(campaign.audience.filters),
        )


def campaign_approve(*, campaign: Campaign, actor: User, note: str = "") -> Campaign:
    """The second pair of eyes: someone other than the author and the submitter, whose role
    may approve (``Perm.CAMPAIGNS_APPROVE``). Content the AI assistant drafted needs it too; no
    campaign skips it."""
    with transaction.atomic():
        campaign = _locked(campaign)
        _require_state(campaign, State.AWAITING_APPROVAL, doing="approved")
        membership = Membership.objects.filter(
            user=actor, organisation_id=campaign.organisation_id
        ).first()
        if not may(user=actor, membership=membership, perm=Perm.CAMPAIGNS_APPROVE):
            raise ApprovalRefused("Your role cannot approve campaigns; ask an organisation admin.")
        if actor.pk in {campaign.created_by_id, campaign.submitted_by_id}:
            raise ApprovalRefused(
                "You prepared this campaign, so someone else must approve it (four eyes)."
            )
        problems = campaign_problems(campaign)
        if problems:
            raise CampaignInvalid(problems)
        campaign = _move(
            campaign,
            State.SCHEDULED,
            "approved",
            actor,
            note,
            approved_by=actor,
            approved_at=timezone.now(),
        )
        _start_on_commit_if_due(campaign)
    return campaign


def campaign_reject(*, campaign: Campaign, actor: User, note: str) -> Campaign:
    """Back to draft with the approver's reason, for the author to fix."""
    if not (note or "").strip():
        raise CampaignInvalid({"note": "Say what needs to change, for the author."})
    with transaction.atomic():
        campaign = _locked(campaign)
        _require_state(campaign, State.AWAITING_APPROVAL, doing="sent back")
        membership = Membership.objects.filter(
            user=actor, organisation_id=campaign.organisation_id
        ).first()
        if not may(user=actor, membership=membership, perm=Perm.CAMPAIGNS_APPROVE):
            raise ApprovalRefused("Your role cannot review campaigns; ask an organisation admin.")
        return _move(campaign, State.DRAFT, "rejected", actor, note.strip())


def campaign_withdraw_submission(*, campaign: Campaign, actor: User | None) -> Campaign:
    """The author takes a submitted campaign back to draft to change it."""
    with transaction.atomic():
        campaign = _locked(campaign)
        _require_state(campaign, State.AWAITING_APPROVAL, doing="taken back")
        return _move(campaign, State.DRAFT, "withdrawn", actor)


def _start_on_commit_if_due(campaign: Campaign) -> None:
    if campaign.schedule == Schedule.NOW or (
        campaign.send_at is not None and campaign.send_at <= timezone.now()
    ):
        _materialise_on_commit(campaign)


def campaign_start(*, campaign: Campaign, now: dt.datetime | None = None) -> bool:
    """Scheduled and due: to ``sending`` (the materialiser then fills the outbox). Returns
    whether it started; a paused or cancelled campaign does not."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state != State.SCHEDULED:
            return campaign.state == State.SENDING
        if campaign.schedule != Schedule.NOW and (campaign.send_at or now) > now:
            return False
        _move(campaign, State.SENDING, "started", None, started_at=now)
    return True


def campaign_pause(*, campaign: Campaign, actor: User | None) -> Campaign:
    """Stop sending: messages not yet handed to the provider are held (dispatch checks the
    campaign's state again just before each hand-over, so a row a worker already claimed is
    held too). Materialisation stops at its next batch."""
    with transaction.atomic():
        campaign = _locked(campaign)
        _require_state(campaign, State.SCHEDULED, State.SENDING, doing="paused")
        campaign = _move(campaign, State.PAUSED, "paused", actor)
    _settle_now_or_later(campaign)
    return campaign


def campaign_resume(*, campaign: Campaign, actor: User | None) -> Campaign:
    """Back to where it was paused from; held messages wait for dispatch again."""
    with transaction.atomic():
        campaign = _locked(campaign)
        _require_state(campaign, State.PAUSED, doing="resumed")
        back_to = State.SENDING if campaign.started_at else State.SCHEDULED
        campaign = _move(campaign, back_to, "resumed", actor)
        if back_to == State.SCHEDULED:
            _start_on_commit_if_due(campaign)
        else:
            _materialise_on_commit(campaign)
    _settle_now_or_later(campaign)
    return campaign


def campaign_cancel(*, campaign: Campaign, actor: User | None, note: str = "") -> Campaign:
    """End the campaign: nothing more is queued, and every message not yet handed to the
    provider is cancelled (each with ``campaign_cancelled`` in its timeline). What the provider
    already has cannot be called back."""
    with transaction.atomic():
        campaign = _locked(campaign)
        if campaign.state in FINAL_STATES:
            raise CampaignStateError(f"Campaign {campaign.pk} is already {campaign.state}.")
        campaign = _move(
            campaign, State.CANCELLED, "cancelled", actor, note, finished_at=timezone.now()
        )
    _settle_now_or_later(campaign)
    return campaign


def _materialise_on_commit(campaign: Campaign) -> None:
    """Start the materialiser once the transition has committed. If the broker cannot take
    the task, the transition stands and ``campaigns_tick`` starts it within 30 seconds: an
    approval must never fail after it was recorded."""
    pk = campaign.pk

    def kick() -> None:
        from campaigns.tasks import campaign_materialise

        try:
            campaign_materialise.delay(pk)
        except Exception:  # the broker's errors are many and library-specific
            logger.warning(
                "campaign %s: materialiser not queued; the tick will start it", pk, exc_info=True
            )

    transaction.on_commit(kick)


_BATCH = 2000
# A pause, resume or cancel moves at most this many messages inside the staff member's request
# (about 2 s); the rest are moved by the campaign_messages_settle task, and campaigns_tick is the
# safety net. Meanwhile dispatch already refuses the rows of a paused or cancelled campaign.
INLINE_MOVE_LIMIT = 10_000

# What each state wants of the campaign's messages no worker has: (from, to, reason).
_SETTLE: dict[str, tuple[tuple[str, ...], str, str]] = {
    State.PAUSED: (WAITING, MessageStatus.HELD, "campaign_paused"),
    State.CANCELLED: (
        (*WAITING, MessageStatus.HELD),
        MessageStatus.CANCELLED,
        "campaign_cancelled",
    ),
    State.SENDING: ((MessageStatus.HELD,), MessageStatus.QUEUED, "campaign_resumed"),
    State.SCHEDULED: ((MessageStatus.HELD,), MessageStatus.QUEUED, "campaign_resumed"),
}


def campaign_messages_settle(*, campaign: Campaign, limit: int | None = None) -> bool:
    """Bring the campaign's messages that no worker has in line with its state: held while
    paused, cancelled once cancelled, waiting again once resumed. At most ``limit`` (None: all);
    True when nothing is left to move. A transition made meanwhile stops this run: the newer
    transition's own settling takes over."""
    rule = _SETTLE.get(campaign.state)
    if rule is None:
        return True
    from_statuses, to_status, reason = rule
    return _messages_move(campaign, from_statuses, to_status, reason, limit=limit)


def _settle_now_or_later(campaign: Campaign) -> None:
    if campaign_messages_settle(campaign=campaign, limit=INLINE_MOVE_LIMIT):
        return
    pk = campaign.pk

    def kick() -> None:
        from campaigns.tasks import campaign_messages_settle as settle_task

        try:
            settle_task.delay(pk)
        except Exception:  # the broker's errors are many and library-specific
            logger.warning(
                "campaign %s: settling not queued; the tick will do it", pk, exc_info=True
            )

    transaction.on_commit(kick)


def _messages_move(
    campaign: Campaign,
    from_statuses: Sequence[str],
    to_status: str,
    reason: str,
    *,
    limit: int | None = None,
) -> bool:
    """Move the campaign's messages in ``from_statuses`` to ``to_status`` in batches, each with
    an event: a 100,000-message campaign never holds one long transaction over the outbox.
    True when none is left; False when ``limit`` was reached or the campaign's state changed."""
    moved = 0
    state = campaign.state
    while True:
        if limit is not None and moved >= limit:
            return False
        current = Campaign.objects.filter(pk=campaign.pk).values_list("state", flat=True).first()
        if current != state:
            return False
        with transaction.atomic():
            ids = list(
                Message.objects.filter(
                    # The outbox's unique index leads with (organisation, dedupe key).
                    organisation_id=campaign.organisation_id,
                    dedupe_key=campaign.dedupe_key,
                    campaign_id=campaign.pk,
                    status__in=list(from_statuses),
                )
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:_BATCH]
            )
            if not ids:
                return True
            now = timezone.now()
            update: dict[str, Any] = {"status": to_status}
            if to_status == MessageStatus.CANCELLED:
                update.update(final_at=now, last_error=reason)
            changed = Message.objects.filter(pk__in=ids, status__in=list(from_statuses)).update(
                **update
            )
            MessageEvent.objects.bulk_create(
                [
                    MessageEvent(
                        organisation_id=campaign.organisation_id,
                        message_id=pk,
                        kind=to_status,
                        at=now,
                        recorded_at=now,
                        source=EventSource.STAFF,
                        detail={"reason": reason, "campaign": campaign.pk},
                    )
                    for pk in ids
                ]
            )
            moved += changed
            if to_status == MessageStatus.QUEUED:
                from messaging.services import dispatch_kick_on_commit

                dispatch_kick_on_commit(Kind.MARKETING)
