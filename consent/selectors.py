"""Reads over consent, always scoped to one organisation (TEN-1).

The current state is derived, never stored (CON-1): for each contact, purpose and concrete
channel, the latest entry whose channel is that channel or "all" (latest by ``recorded_at``, then
id). So a later "sms" entry overrides an earlier "all" for SMS only, and a later "all" overrides
every earlier entry of each channel. For minors (CNT-6) the latest entry written by a guardian
is derived the same way, beside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation
from consent.models import (
    CONCRETE_CHANNELS,
    Channel,
    ConsentEntry,
    Objection,
    Purpose,
    Source,
    Status,
    Wording,
)
from contacts.models import RelationshipStatus


@dataclass(frozen=True)
class EntryRef:
    """The part of an entry the derived state needs."""

    id: int
    status: str
    recorded_at: dt.datetime
    source: str
    cause: str
    channel: str  # as recorded: a concrete channel or "all"

    @property
    def is_given(self) -> bool:
        return self.status == Status.GIVEN


@dataclass(frozen=True)
class ConsentState:
    """The state of one contact, purpose and concrete channel."""

    purpose: str
    channel: str
    current: EntryRef
    guardian: EntryRef | None  # the latest entry recorded by a parent or guardian, if any

    @property
    def status(self) -> str:
        return self.current.status


# {contact_id: {(purpose slug, concrete channel): ConsentState}}
States = dict[int, dict[tuple[str, str], ConsentState]]


def _channels_of(channel: str) -> tuple[str, ...]:
    return CONCRETE_CHANNELS if channel == Channel.ALL else (channel,)


def consent_states(
    *,
    organisation: Organisation | None,
    contact_ids: Iterable[int],
    purpose: str | None = None,
    channels: Collection[str] = CONCRETE_CHANNELS,
) -> States:
    """The derived state of many contacts at once, in one query.

    ``purpose`` (a slug) and ``channels`` narrow what is read; contacts without entries are
    absent from the answer.
    """
    organisation = require_organisation(organisation)
    ids = list(contact_ids)
    if not ids:
        return {}
    entries = ConsentEntry.objects.for_organisation(organisation).filter(contact_id__in=ids)
    if purpose is not None:
        entries = entries.filter(purpose__slug=purpose)
    wanted = set(channels)
    if wanted != set(CONCRETE_CHANNELS):
        entries = entries.filter(channel__in=[*wanted, Channel.ALL])
    rows = entries.order_by("recorded_at", "pk").values_list(
        "contact_id", "purpose__slug", "pk", "status", "recorded_at", "source", "cause", "channel"
    )
    current: dict[tuple[int, str, str], EntryRef] = {}
    guardian: dict[tuple[int, str, str], EntryRef] = {}
    for contact_id, slug, pk, status, recorded_at, source, cause, channel in rows:
        ref = EntryRef(pk, status, recorded_at, source, cause, channel)
        for concrete in _channels_of(channel):
            if concrete not in wanted:
                continue
            key = (contact_id, slug, concrete)
            current[key] = ref  # rows come oldest first: the last one written wins
            if source == Source.GUARDIAN:
                guardian[key] = ref
    states: States = {}
    for (contact_id, slug, concrete), ref in current.items():
        states.setdefault(contact_id, {})[(slug, concrete)] = ConsentState(
            slug, concrete, ref, guardian.get((contact_id, slug, concrete))
        )
    return states


def consent_ledger(*, organisation: Organisation | None, contact_id: int) -> QuerySet[ConsentEntry]:
    """Every entry of one contact, oldest first, with purpose and wording joined in."""
    return (
        ConsentEntry.objects.for_organisation(organisation)
        .filter(contact_id=contact_id)
        .select_related("purpose", "wording")
        .order_by("recorded_at", "pk")
    )


def purpose_list(*, organisation: Organisation | None) -> QuerySet[Purpose]:
    return Purpose.objects.for_organisation(organisation).order_by("pk")


def purpose_get(*, organisation: Organisation | None, slug: str) -> Purpose:
    """The organisation's purpose with this slug, or ``Purpose.DoesNotExist``."""
    return Purpose.objects.get_for_organisation(organisation, slug=slug)


def wording_list(
    *, organisation: Organisation | None, purpose: Purpose | None = None
) -> QuerySet[Wording]:
    wordings = Wording.objects.for_organisation(organisation).select_related("purpose")
    if purpose is not None:
        wordings = wordings.filter(purpose=purpose)
    return wordings.order_by("purpose_id", "version", "language")


def objection_list(*, organisation: Organisation | None, contact_id: int) -> QuerySet[Objection]:
    return Objection.objects.for_organisation(organisation).filter(contact_id=contact_id)


def relationship_is_live(
    status: str, started: dt.date | None, ended: dt.date | None, today: dt.date
) -> bool:
    """A business relationship counts when it is active and has begun and not ended by today."""
    if status != RelationshipStatus.ACTIVE:
        return False
    if started is not None and started > today:
        return False
    return ended is None or ended > today


def lapse_due(given_at: dt.datetime, now: dt.datetime) -> bool:
    """Two years after it was given (CON-5), on the same calendar day (29 February: the 28th)."""
    return now >= add_years(given_at, 2)


def add_years(moment: dt.datetime, years: int) -> dt.datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February in a year that has none
        return moment.replace(year=moment.year + years, day=28)
