"""Materialisation (MSG-4, MSG-9): a sending campaign's audience becomes outbox rows.

The audience is streamed in keyset batches of contact ids (``audience_id_batches``): memory is
one batch whatever the audience's size. Each batch is one transaction that

1. locks the campaign row (a pause or cancel waits for at most one batch, and two runs of the
   materialiser take turns instead of both writing),
2. skips the contacts that already have a message of this campaign on any channel,
3. tries the campaign's channels in order of preference through ``messages_enqueue_bulk``
   (one eligibility decision per channel for the contacts still without a message; a contact
   refused on one channel is tried on the next), each contact with the template of its
   language or the fallback language,
4. adds what it found to the campaign's counters and moves the cursor
   (``materialised_through``) to the batch's last contact id.

The cursor and the rows commit together: a crash loses the batch's work, never doubles it, and
the next run continues from the cursor. Dispatch decides eligibility again for every row
(MSG-5) and applies the frequency cap and quiet hours.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from campaigns.audiences import (
    AudienceCount,
    audience_final_queryset,
    audience_id_batches,
    combine_channels,
)
from campaigns.models import Campaign, CampaignTemplate, Schedule, State
from campaigns.services import _move, campaign_start
from consent.selectors import values_in
from contacts.models import Contact
from messaging.models import Kind, Message, MessageTemplate
from messaging.services import _language, messages_enqueue_bulk

logger = logging.getLogger("carely.campaigns")

BATCH = 2000
# A spread send gives each slice of a batch its own time; 20 slices per batch keep a small
# audience spread too, and cost one enqueue call per slice and channel.
WINDOW_SLICES = 20
_LEASE_SECONDS = 300
# Only the columns rendering reads are loaded (each is a decryption per contact); the address
# column only for the campaign's channels (WhatsApp and SMS reach the phone).
_CONTACT_FIELDS = ("pk", "organisation_id", "first_name", "last_name", "preferred_language")


def _contact_fields(channels: Sequence[str]) -> tuple[str, ...]:
    wanted = list(_CONTACT_FIELDS)
    if "email" in channels:
        wanted.append("email")
    if {"sms", "whatsapp"} & set(channels):
        wanted.append("phone")
    return tuple(wanted)


@dataclass
class MaterialiseReport:
    batches: int = 0
    contacts: int = 0
    queued: int = 0
    skipped_existing: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    finished: bool = False
    stopped_because: str = ""


def _lease_key(campaign_id: int) -> str:
    return f"campaigns:materialise:{campaign_id}"


def campaign_materialise(
    campaign_id: int,
    *,
    batch: int = BATCH,
    now: dt.datetime | None = None,
    track_links: Callable[[Contact, str], str] | None = None,
    stop_after_batches: int | None = None,
) -> MaterialiseReport:
    """Fill the outbox for one campaign, from its cursor to the end of its audience.

    Safe to call again at any time (after a crash, from the periodic task, twice at once): the
    campaign lock, the cursor and the per-contact check make a second row impossible.
    ``stop_after_batches`` is for tests that simulate a crash between batches.
    """
    report = MaterialiseReport()
    campaign = Campaign.objects.select_related("organisation").get(pk=campaign_id)
    if campaign.state == State.SCHEDULED:
        campaign_start(campaign=campaign, now=now)
        campaign.refresh_from_db()
    if campaign.state != State.SENDING or campaign.materialised_at is not None:
        report.stopped_because = campaign.state
        report.finished = campaign.materialised_at is not None
        return report
    # One materialiser per campaign at a time; the lock inside each batch is the real guard,
    # this only saves a second process from waiting on it.
    if not cache.add(_lease_key(campaign_id), "1", _LEASE_SECONDS):
        report.stopped_because = "already running"
        return report
    try:
        return _run(campaign, batch, now, track_links, stop_after_batches, report)
    finally:
        cache.delete(_lease_key(campaign_id))


def _run(
    campaign: Campaign,
    batch: int,
    now: dt.datetime | None,
    track_links: Callable[[Contact, str], str] | None,
    stop_after_batches: int | None,
    report: MaterialiseReport,
) -> MaterialiseReport:
    organisation = campaign.organisation
    templates = _templates(campaign)
    if campaign.audience_total == 0 and campaign.materialised_through == 0:
        # The total, for spreading a window send; also shown as progress.
        total = audience_final_queryset(
            organisation=organisation, filters=campaign.audience_filters
        ).count()
        Campaign.objects.filter(pk=campaign.pk).update(audience_total=total)
        campaign.audience_total = total
    for cursor, ids in audience_id_batches(
        organisation=organisation,
        filters=campaign.audience_filters,
        after=campaign.materialised_through,
        batch=batch,
    ):
        cache.touch(_lease_key(campaign.pk), _LEASE_SECONDS)
        done = _batch(campaign, cursor, ids, templates, now, track_links, report)
        if not done:
            return report
        report.batches += 1
        if stop_after_batches is not None and report.batches >= stop_after_batches:
            report.stopped_because = "stop_after_batches"
            return report
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state == State.SENDING and locked.materialised_at is None:
            locked.materialised_at = timezone.now()
            locked.save(update_fields=["materialised_at"])
    report.finished = True
    return report


def _templates(campaign: Campaign) -> dict[tuple[str, str], MessageTemplate]:
    return {
        (t.channel, t.language): t.template
        for t in CampaignTemplate.objects.filter(campaign=campaign).select_related("template")
    }


def _batch(
    campaign: Campaign,
    cursor: int,
    ids: list[int],
    templates: dict[tuple[str, str], MessageTemplate],
    now: dt.datetime | None,
    track_links: Callable[[Contact, str], str] | None,
    report: MaterialiseReport,
) -> bool:
    """One batch in one transaction; False when the campaign stopped (paused, cancelled)."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != State.SENDING:
            report.stopped_because = locked.state
            return False
        if locked.materialised_through >= cursor:
            return True  # another run did this batch
        refresh = getattr(track_links, "refresh", None)
        if refresh is not None:
            refresh()  # the link numbers as committed, read under the lock
        already = set(
            Message.objects.filter(
                organisation_id=campaign.organisation_id, dedupe_key=campaign.dedupe_key
            )
            .filter(values_in(Message, "contact", ids))
            .values_list("contact_id", flat=True)
        )
        todo = [pk for pk in ids if pk not in already]
        report.skipped_existing += len(already)
        contacts = (
            list(
                Contact.objects.for_organisation(campaign.organisation)
                .filter(values_in(Contact, "id", todo))
                .only(*_contact_fields(locked.channels))
                .order_by("pk")
            )
            if todo
            else []
        )
        tally = _enqueue(locked, contacts, templates, now, track_links)
        flush = getattr(track_links, "flush", None)
        if flush is not None:
            flush()  # new link numbers commit with the rows whose tokens carry them
        _count(locked, tally, len(ids), cursor)
        report.contacts += len(ids)
        report.queued += tally.eligible
        for reason, count in tally.excluded.items():
            report.excluded[reason] = report.excluded.get(reason, 0) + count
    return True


def _due_slices(
    campaign: Campaign, contacts: list[Contact], now: dt.datetime
) -> list[tuple[dt.datetime, list[Contact]]]:
    if campaign.schedule != Schedule.WINDOW or not contacts:
        return [(max(campaign.send_at or now, now), contacts)]
    assert campaign.send_at is not None and campaign.send_until is not None
    span = (campaign.send_until - campaign.send_at).total_seconds()
    total = max(campaign.audience_total, 1)
    size = max(1, -(-len(contacts) // WINDOW_SLICES))
    slices = []
    for start in range(0, len(contacts), size):
        position = campaign.targeted + start
        due = campaign.send_at + dt.timedelta(seconds=span * min(position / total, 1.0))
        slices.append((max(due, now), contacts[start : start + size]))
    return slices


def _enqueue(
    campaign: Campaign,
    contacts: list[Contact],
    templates: dict[tuple[str, str], MessageTemplate],
    now: dt.datetime | None,
    track_links: Callable[[Contact, str], str] | None,
) -> AudienceCount:
    """The channel cascade for one batch; returns what happened, as counts."""
    now = now or timezone.now()
    organisation = campaign.organisation
    tally = AudienceCount(by_channel={c: 0 for c in campaign.channels})
    reasons: dict[int, dict[str, list[str]]] = defaultdict(dict)
    for due, group in _due_slices(campaign, contacts, now):
        pending = group
        for channel in campaign.channels:
            if not pending:
                break
            by_template: dict[int, list[Contact]] = defaultdict(list)
            chosen: dict[int, MessageTemplate] = {}
            for contact in pending:
                language = _language(contact, organisation)
                template = templates.get((channel, language)) or templates.get(
                    (channel, campaign.fallback_language)
                )
                if template is None:
                    reasons[contact.pk][channel] = ["no_template"]
                    continue
                by_template[template.pk].append(contact)
                chosen[template.pk] = template
            for template_id, members in by_template.items():
                result = messages_enqueue_bulk(
                    organisation=organisation,
                    contacts=members,
                    channel=channel,
                    kind=Kind.MARKETING,
                    purpose=campaign.purpose,
                    template=chosen[template_id],
                    send_at=due,
                    dedupe_key=campaign.dedupe_key,
                    created_by=campaign.approved_by,
                    campaign_id=campaign.pk,
                    track_links=track_links,
                )
                for pk, codes in result.refused.items():
                    reasons[pk][channel] = list(codes)
                for pk in result.invalid:
                    reasons[pk][channel] = ["invalid"]
                queued = len(members) - len(result.refused) - len(result.invalid)
                tally.by_channel[channel] += queued
                tally.eligible += queued
            # Refused, invalid or without a template here: the next channel may take them.
            pending = [c for c in pending if channel in reasons.get(c.pk, {})]
        for contact in pending:
            _, reason = combine_channels(reasons[contact.pk], campaign.channels)
            assert reason is not None
            tally.excluded[reason] = tally.excluded.get(reason, 0) + 1
    return tally


def _count(campaign: Campaign, tally: AudienceCount, handled: int, cursor: int) -> None:
    campaign.targeted += handled
    campaign.queued += tally.eligible
    exclusions = dict(campaign.exclusions or {})
    for reason, count in tally.excluded.items():
        exclusions[reason] = exclusions.get(reason, 0) + count
    campaign.exclusions = exclusions
    by_channel = dict(campaign.queued_by_channel or {})
    for channel, count in tally.by_channel.items():
        by_channel[channel] = by_channel.get(channel, 0) + count
    campaign.queued_by_channel = by_channel
    campaign.materialised_through = cursor
    campaign.save(
        update_fields=[
            "targeted",
            "queued",
            "exclusions",
            "queued_by_channel",
            "materialised_through",
        ]
    )


def campaigns_complete(*, now: dt.datetime | None = None, ids: Sequence[int] | None = None) -> int:
    """Mark sending campaigns completed once materialised and no message of theirs waits or is
    being sent. Returns how many."""
    from messaging.models import WAITING
    from messaging.models import Status as MessageStatus

    open_statuses = [*WAITING, MessageStatus.SENDING, MessageStatus.HELD]
    candidates = Campaign.objects.filter(state=State.SENDING, materialised_at__isnull=False)
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))
    done = 0
    for campaign in candidates:
        busy = Message.objects.filter(
            organisation_id=campaign.organisation_id,
            campaign_id=campaign.pk,
            status__in=open_statuses,
        ).exists()
        if busy:
            continue
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if locked.state != State.SENDING:
                continue
            _move(locked, State.COMPLETED, "completed", None, finished_at=now or timezone.now())
        done += 1
    return done
