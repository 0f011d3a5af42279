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
from typing import NamedTuple

from django.db import connections
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    Field,
    ForeignKey,
    IntegerField,
    Model,
    Q,
    QuerySet,
    Window,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber

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


class EntryRef(NamedTuple):
    """The part of an entry the derived state needs. (A named tuple: the eligibility decision
    builds thousands per batch, and tuples are several times cheaper than frozen dataclasses.)"""

    id: int
    status: str
    recorded_at: dt.datetime
    source: str
    cause: str
    channel: str  # as recorded: a concrete channel or "all"

    @property
    def is_given(self) -> bool:
        return self.status == Status.GIVEN


class ConsentState(NamedTuple):
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


def values_in(model: type[Model], field_name: str, values: Collection[object]) -> Q:
    """``field IN values`` for a batch (hundreds to thousands of integers or keyed hashes).

    On PostgreSQL the values go as one comma-separated text parameter that the server splits:
    Django binds parameters on the client, and quoting a 1,000-element IN list or array there
    costs more than running the query (bench/consent_eligibility.py). ``= ANY(...)`` uses the
    same index as IN.
    """
    connection = connections[model._default_manager.db]
    if connection.vendor != "postgresql":
        return Q(**{f"{field_name}__in": list(values)})
    model_field = model._meta.get_field(field_name)
    assert isinstance(model_field, Field)
    numeric = isinstance(model_field, IntegerField | ForeignKey)
    texts = [str(v) for v in values]
    if not numeric and any("," in t for t in texts):
        raise ValueError(f"values_in: a {field_name} value contains a comma")
    quote = connection.ops.quote_name
    column = f"{quote(model._meta.db_table)}.{quote(str(model_field.column))}"
    element = "bigint" if numeric else "text"
    # Only quoted model names go into the SQL; the values are one parameter.
    sql = f"{column} = ANY(string_to_array(%s, ',')::{element}[])"
    return Q(RawSQL(sql, [",".join(texts)], output_field=BooleanField()))  # noqa: S611


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
    entries = ConsentEntry.objects.for_organisation(organisation).filter(
        values_in(ConsentEntry, "contact", ids)
    )
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


def consent_latest(
    *,
    organisation: Organisation | None,
    contact_ids: Collection[int],
    purpose: str,
    purpose_id: int,
    channel: str,
) -> dict[int, ConsentState]:
    """``consent_states`` for one purpose and one concrete channel, in one query, with the
    database picking the latest rows: at most two per contact (the latest entry by anyone but a
    guardian, and the latest by a guardian), whatever the length of the ledger. The eligibility
    decision asks this for every batch of a send.
    """
    organisation = require_organisation(organisation)
    if not contact_ids:
        return {}
    by_guardian = ExpressionWrapper(Q(source=Source.GUARDIAN), output_field=BooleanField())
    rows = (
        ConsentEntry.objects.for_organisation(organisation)
        .filter(values_in(ConsentEntry, "contact", contact_ids))
        .filter(purpose_id=purpose_id, channel__in=[channel, Channel.ALL])
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("contact_id"), by_guardian],
                order_by=[F("recorded_at").desc(), F("pk").desc()],
            )
        )
        .filter(rank=1)
        .order_by()  # the model's ordering would sort the result for nothing
        .values_list("contact_id", "pk", "status", "recorded_at", "source", "cause", "channel")
    )
    latest: dict[int, tuple[EntryRef, EntryRef | None]] = {}
    for contact_id, pk, status, recorded_at, source, cause, entry_channel in rows:
        ref = EntryRef(pk, status, recorded_at, source, cause, entry_channel)
        seen = latest.get(contact_id)
        guardian = ref if source == _GUARDIAN else (seen[1] if seen else None)
        newest = ref if seen is None or (ref[2], ref[0]) > (seen[0][2], seen[0][0]) else seen[0]
        latest[contact_id] = (newest, guardian)
    return {
        contact_id: ConsentState(purpose, channel, current, guardian)
        for contact_id, (current, guardian) in latest.items()
    }


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


# Plain strings: comparing with an enum member is several times slower, and these run per contact.
_ACTIVE = RelationshipStatus.ACTIVE.value
_GUARDIAN = Source.GUARDIAN.value


def relationship_is_live(
    status: str, started: dt.date | None, ended: dt.date | None, today: dt.date
) -> bool:
    """A business relationship counts when it is active and has begun and not ended by today."""
    if status != _ACTIVE:
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
