"""Materialisation (MSG-4, MSG-9): a sending campaign's audience becomes outbox rows.

The audience is streamed in keyset batches of contact ids (``audience_id_batches``): memory is
one batch whatever the audience's size. Each batch is first **prepared**, nothing written:
contacts that already have a message of this campaign are left out, the rest are tried on the
campaign's channels in order of preference (``messages_prepare_bulk``: one eligibility decision
per channel; a contact refused on one channel is tried on the next), each with the template of
its language or the fallback language. Then it is **applied** in one transaction that locks the
campaign row (a pause or cancel waits for at most one batch; two runs take turns), checks the
state and the cursor again, leaves out contacts another run has handled since (those up to
the cursor), writes the rows, their events and the new link numbers, and moves the cursor
(``materialised_through``) with the counters.

The cursor and the rows commit together: a crash loses the batch's work, never doubles it, and
the next run continues from the cursor. For large campaigns on PostgreSQL a forked reader
prepares the next batch while this process applies the current one. Dispatch decides
eligibility again for every row (MSG-5) and applies the frequency cap and quiet hours.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from campaigns.audiences import (
    AudienceCount,
    audience_final_queryset,
    audience_id_batches,
    combine_channels,
)
from campaigns.models import Campaign, CampaignLink, CampaignTemplate, Schedule, State
from campaigns.services import _move, campaign_start
from carely.lib.forked import run_ahead
from consent.selectors import values_in
from contacts.models import Contact
from contacts.selectors import ContactValues
from messaging.models import Kind, Message, MessageTemplate
from messaging.services import (
    LinkTracker,
    PreparedEnqueue,
    _language,
    messages_insert_prepared,
    messages_prepare_bulk,
)

logger = logging.getLogger("carely.campaigns")

# Contacts per batch: measured at 100,000 contacts with the forked reader, 1,000 / 2,000 /
# 5,000 / 10,000 gave 6,846 / 7,262 / 8,348 / 8,098 rows/s (bench/README.md); a pause waits for
# at most one batch (well under a second).
BATCH = 5000
# A spread send gives each slice of a batch its own time; 20 slices per batch keep a small
# audience spread too, and cost one enqueue call per slice and channel.
WINDOW_SLICES = 20
_LEASE_SECONDS = 300


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
    track_links: LinkTracker | None = None,
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
    track_links: LinkTracker | None,
    stop_after_batches: int | None,
    report: MaterialiseReport,
) -> MaterialiseReport:
    organisation = campaign.organisation
    if campaign.audience_total == 0 and campaign.materialised_through == 0:
        # The total, for spreading a window send; also shown as progress.
        total = audience_final_queryset(
            organisation=organisation, filters=campaign.audience_filters
        ).count()
        Campaign.objects.filter(pk=campaign.pk).update(audience_total=total)
        campaign.audience_total = total
    remaining = campaign.audience_total - campaign.targeted
    forked = (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and remaining >= settings.CAMPAIGN_MATERIALISE_FORK_MIN_CONTACTS
    )
    batches = (
        _prepared_batches_forked(campaign, batch, now, track_links)
        if forked
        else _prepared_batches(campaign, batch, now, track_links)
    )
    # Each batch makes tens of thousands of short-lived objects: the first generation is
    # collected less often while this runs (a sixth of the writer's CPU), then as before.
    thresholds = gc.get_threshold()
    gc.set_threshold(20_000, *thresholds[1:])
    try:
        for prepared in batches:
            cache.touch(_lease_key(campaign.pk), _LEASE_SECONDS)
            if not _apply(campaign, prepared, report):
                return report
            report.batches += 1
            if stop_after_batches is not None and report.batches >= stop_after_batches:
                report.stopped_because = "stop_after_batches"
                return report
    finally:
        gc.set_threshold(*thresholds)
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # a forked producer is stopped here
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


@dataclass
class PreparedBatch:
    """One batch decided and rendered, nothing written: what ``_apply`` writes. Picklable, so
    the forked producer can send it down a pipe."""

    after: int  # the cursor the batch was read after: its ids are all above it
    cursor: int
    ids: list[int]
    already: set[int]
    calls: list[PreparedEnqueue]
    # Contacts no channel takes, with their reasons per channel.
    excluded: dict[int, dict[str, list[str]]]
    # Link numbers the tracker gave out for this batch (url -> number), written with it.
    links: dict[str, int]


def _existing(campaign: Campaign, ids: Sequence[int]) -> set[int]:
    """Contacts of ``ids`` that already have a message of this campaign, on any channel."""
    return set(
        Message.objects.filter(
            organisation_id=campaign.organisation_id, dedupe_key=campaign.dedupe_key
        )
        .filter(values_in(Message, "contact", ids))
        .values_list("contact_id", flat=True)
    )


def _prepared_batches(
    campaign: Campaign,
    batch: int,
    now: dt.datetime | None,
    track_links: LinkTracker | None,
) -> Iterator[PreparedBatch]:
    """The audience from the campaign's cursor, batch by batch, decided and rendered."""
    templates = _templates(campaign)
    position = campaign.targeted
    after = campaign.materialised_through
    for cursor, ids in audience_id_batches(
        organisation=campaign.organisation,
        filters=campaign.audience_filters,
        after=campaign.materialised_through,
        batch=batch,
    ):
        yield _prepare(campaign, after, cursor, ids, position, templates, now, track_links)
        position += len(ids)
        after = cursor


def _prepared_batches_forked(
    campaign: Campaign,
    batch: int,
    now: dt.datetime | None,
    track_links: LinkTracker | None,
) -> Iterator[PreparedBatch]:
    """``_prepared_batches`` in a forked child, one batch ahead of the writer.

    Loading, deciding and rendering a batch is about as much work as writing it, and threads
    would share one interpreter lock (ADR 0008 measured that for imports), so a process
    prepares while this one writes. The connections are closed before the fork, so each side
    opens its own; the pipe's back-pressure keeps the child at most a batch or two ahead. The
    child only reads: every write, and every check that must hold at the write (the campaign's
    state, its cursor, messages queued meanwhile), stays with the writer under the campaign's
    lock (``_apply``). A failure in the child comes back as a ``RuntimeError`` with its
    traceback."""
    return run_ahead(
        lambda: _prepared_batches(campaign, batch, now, track_links),
        name="campaign-materialise-reader",
        what="the materialiser's reading process",
        reconnect=True,
    )


def _prepare(
    campaign: Campaign,
    after: int,
    cursor: int,
    ids: list[int],
    position: int,
    templates: dict[tuple[str, str], MessageTemplate],
    now: dt.datetime | None,
    track_links: LinkTracker | None,
) -> PreparedBatch:
    """The channel cascade for one batch, without writing: contacts that already have a message
    of the campaign are left out, the rest are tried channel by channel in preference order,
    each with the template of its language or the fallback language."""
    now = now or timezone.now()
    organisation = campaign.organisation
    already = _existing(campaign, ids)
    todo = [pk for pk in ids if pk not in already]
    # Only the id and language here: the names and address are loaded, by
    # messages_prepare_bulk, for the contacts a channel takes (the rest are never decrypted).
    contacts = (
        [
            ContactValues(pk, organisation.pk, preferred_language=language)
            for pk, language in Contact.objects.for_organisation(organisation)
            .filter(values_in(Contact, "id", todo))
            .values_list("pk", "preferred_language")
            .order_by("pk")
        ]
        if todo
        else []
    )
    calls: list[PreparedEnqueue] = []
    excluded: dict[int, dict[str, list[str]]] = {}
    for due, group in _due_slices(campaign, contacts, now, position):
        reasons: dict[int, dict[str, list[str]]] = defaultdict(dict)
        pending = group
        for channel in campaign.channels:
            if not pending:
                break
            by_template: dict[int, list[ContactValues]] = defaultdict(list)
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
                call = messages_prepare_bulk(
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
                    load_values=True,
                    queued_already=already,
                )
                for pk, codes in call.result.refused.items():
                    reasons[pk][channel] = list(codes)
                for pk in call.result.invalid:
                    reasons[pk][channel] = ["invalid"]
                calls.append(call)
            # Refused, invalid or without a template here: the next channel may take them.
            pending = [c for c in pending if channel in reasons.get(c.pk, {})]
        for contact in pending:
            excluded[contact.pk] = reasons[contact.pk]
    links: dict[str, int] = {}
    pending_links = getattr(track_links, "pending", None)
    if isinstance(pending_links, dict):
        links = dict(pending_links)
        pending_links.clear()  # handed to this batch's write
    return PreparedBatch(after, cursor, ids, already, calls, excluded, links)


def _apply(campaign: Campaign, prepared: PreparedBatch, report: MaterialiseReport) -> bool:
    """Write one prepared batch in one transaction under the campaign's lock; False when the
    campaign stopped (paused, cancelled). The cursor moves with the rows.

    Only the materialiser writes a campaign's messages, and always with the cursor moving past
    their contacts in the same transaction: every contact up to the cursor has been handled
    (queued or excluded), and none above it has a message. So when another run moved the cursor
    into this batch (its batches ended elsewhere), the contacts up to the cursor are left out
    of the rows and the counts alike, with no lookup; and while the cursor is where this batch
    was read from, nothing is left out. The unique index stops a second row in any case."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.state != State.SENDING:
            report.stopped_because = locked.state
            return False
        through = locked.materialised_through
        if through >= prepared.cursor:
            return True  # another run wrote this batch
        covered = (
            {pk for pk in prepared.ids if pk <= through} if through > prepared.after else set()
        )
        _links_write(campaign, prepared.links)
        tally = AudienceCount(by_channel={c: 0 for c in campaign.channels})
        for call in prepared.calls:
            result = messages_insert_prepared(call, skip_contacts=covered)
            tally.by_channel[call.common["channel"]] += result.created
            tally.eligible += result.created
        for pk, per_channel in prepared.excluded.items():
            if pk in covered:
                continue
            _, reason = combine_channels(per_channel, campaign.channels)
            assert reason is not None
            tally.excluded[reason] = tally.excluded.get(reason, 0) + 1
        handled = len(prepared.ids) - len(covered)
        _count(locked, tally, handled, prepared.cursor)
        report.contacts += handled
        report.skipped_existing += len(prepared.already - covered)
        report.queued += tally.eligible
        for reason, count in tally.excluded.items():
            report.excluded[reason] = report.excluded.get(reason, 0) + count
    return True


def _links_write(campaign: Campaign, links: dict[str, int]) -> None:
    """The link numbers handed out for this batch, written with the rows whose tokens carry
    them. Two runs that numbered the same link differently cannot both commit: the second
    fails here and its batch is rolled back (a later run does it again)."""
    if not links:
        return
    CampaignLink.objects.bulk_create(
        [
            CampaignLink(
                organisation_id=campaign.organisation_id, campaign=campaign, number=n, url=url
            )
            for url, n in links.items()
        ],
        ignore_conflicts=True,
    )
    stored = dict(
        CampaignLink.objects.filter(campaign=campaign, url__in=list(links)).values_list(
            "url", "number"
        )
    )
    if stored != links:
        raise RuntimeError(
            f"campaign {campaign.pk}: another run numbered its links differently; run again"
        )


def _due_slices(
    campaign: Campaign, contacts: list[ContactValues], now: dt.datetime, position: int
) -> list[tuple[dt.datetime, list[ContactValues]]]:
    if campaign.schedule != Schedule.WINDOW or not contacts:
        return [(max(campaign.send_at or now, now), contacts)]
    assert campaign.send_at is not None and campaign.send_until is not None
    span = (campaign.send_until - campaign.send_at).total_seconds()
    total = max(campaign.audience_total, 1)
    size = max(1, -(-len(contacts) // WINDOW_SLICES))
    slices = []
    for start in range(0, len(contacts), size):
        due = campaign.send_at + dt.timedelta(seconds=span * min((position + start) / total, 1.0))
        slices.append((max(due, now), contacts[start : start + size]))
    return slices


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
            # The outbox's unique index leads with (organisation, dedupe key).
            organisation_id=campaign.organisation_id,
            dedupe_key=campaign.dedupe_key,
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
