"""Audiences (MSG-4): a saved filter over contact attributes and consent, and its live count.

Three layers, each cheap enough for a 100,000-contact organisation:

1. ``audience_queryset``: the filter on plain columns (language, source, relationship status and
   dates, tags, consent state) as one SQL query, never a Python list of contacts.
2. Gender and age live in encrypted columns (SEC-8) and cannot be compared in SQL; when the
   filter names them, ``audience_ids_decrypted`` streams only ``(id, gender, birth date)`` of
   the rows layer 1 kept, in keyset batches, and decides in Python.
3. ``audience_count`` says how many match, how many may receive the campaign on which channel
   and why the others may not, with the same reason codes as ``consent.eligibility`` (one
   grouped SQL query; minors, whose guardian's consent needs a decrypted birth date, are decided
   by ``eligibility_decide`` itself). It returns numbers only: it never lists a person.

The count is a forecast; dispatch decides again for every message (MSG-5).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation
from consent.eligibility import Reason, eligibility_decide
from consent.models import CONCRETE_CHANNELS, ConsentEntry, Purpose
from consent.models import Channel as ConsentChannel
from consent.selectors import values_in
from contacts.models import Contact, Gender, RelationshipStatus, SourceKind
from contacts.selectors import tag_filter_q
from contacts.validation import age_on


class AudienceInvalid(ValueError):
    """The filter is wrong; ``problems`` maps each field to what is wrong and what to do."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


CONSENT_STATES = ("given", "withdrawn", "none")
_LIST_FIELDS = {
    "languages": None,
    "genders": [g.value for g in Gender],
    "source_kinds": [s.value for s in SourceKind],
    "sources": None,
    "relationship_statuses": [r.value for r in RelationshipStatus],
    "tags_any": None,
    "tags_all": None,
    "tags_none": None,
}
_DATE_FIELDS = (
    "relationship_started_from",
    "relationship_started_to",
    "relationship_ended_from",
    "relationship_ended_to",
)
KNOWN_FIELDS = {*_LIST_FIELDS, *_DATE_FIELDS, "age_min", "age_max", "consent"}


def filters_clean(raw: Any, *, organisation: Organisation) -> dict[str, Any]:
    """The filter in its stored form, or ``AudienceInvalid`` naming every wrong field.

    Empty lists and blank values are dropped (they mean "any"), lists are de-duplicated and
    sorted, so two filters that select the same people store the same JSON.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise AudienceInvalid({"filters": "must be an object of field names and values."})
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key in sorted(set(raw) - KNOWN_FIELDS):
        problems[key] = "is not a filter field; use one of " + ", ".join(sorted(KNOWN_FIELDS))
    for key, allowed in _LIST_FIELDS.items():
        value = raw.get(key)
        if value in (None, "", []):
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems[key] = "must be a list of texts."
            continue
        items = sorted({v.strip() for v in value if v.strip()})
        if key == "languages":
            items = sorted({v[:2].lower() for v in items})
        wrong = [v for v in items if allowed is not None and v not in allowed]
        if wrong:
            problems[key] = f"unknown value {wrong[0]!r}; use one of " + ", ".join(allowed or [])
            continue
        if items:
            clean[key] = items
    for key in _DATE_FIELDS:
        value = raw.get(key)
        if value in (None, ""):
            continue
        try:
            clean[key] = dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            problems[key] = f"{value!r} is not a date; write it as YYYY-MM-DD."
    for key in ("age_min", "age_max"):
        value = raw.get(key)
        if value in (None, ""):
            continue
        try:
            age = int(value)
        except (TypeError, ValueError):
            problems[key] = f"{value!r} is not a whole number of years."
            continue
        if not 0 <= age <= 130:
            problems[key] = "must be between 0 and 130 years."
            continue
        clean[key] = age
    if clean.get("age_min", 0) > clean.get("age_max", 130):
        problems["age_max"] = "is lower than age_min; swap them."
    consent = raw.get("consent")
    if consent not in (None, [], {}):
        rules = [consent] if isinstance(consent, Mapping) else consent
        cleaned_rules = []
        slugs = set(Purpose.objects.for_organisation(organisation).values_list("slug", flat=True))
        for n, rule in enumerate(rules if isinstance(rules, list) else [None], start=1):
            where = f"consent[{n}]"
            if not isinstance(rule, Mapping):
                problems[where] = "must be an object with purpose, channel and state."
                continue
            purpose = rule.get("purpose")
            channel = rule.get("channel") or ConsentChannel.ALL
            state = rule.get("state") or "given"
            if purpose not in slugs:
                problems[where] = (
                    f"no purpose {purpose!r} in this organisation; use one of "
                    + ", ".join(sorted(slugs))
                )
            elif channel not in (*CONCRETE_CHANNELS, ConsentChannel.ALL):
                problems[where] = f"channel {channel!r} is not sms, email, whatsapp or all."
            elif state not in CONSENT_STATES:
                problems[where] = f"state {state!r} is not one of " + ", ".join(CONSENT_STATES)
            else:
                cleaned_rules.append({"purpose": purpose, "channel": channel, "state": state})
        if cleaned_rules:
            clean["consent"] = cleaned_rules
    if problems:
        raise AudienceInvalid(problems)
    return clean


def needs_decryption(filters: Mapping[str, Any]) -> bool:
    return bool({"genders", "age_min", "age_max"} & set(filters))


def _with_latest(organisation: Organisation, latest: QuerySet[Any], state: str) -> QuerySet[Any]:
    return (
        Contact.objects.for_organisation(organisation)
        .annotate(_consent_state=Subquery(latest))
        .filter(_consent_state=state)
        .values("pk")
    )


def audience_queryset(
    *, organisation: Organisation, filters: Mapping[str, Any]
) -> QuerySet[Contact]:
    """The contacts the filter's plain-column part selects, as a lazy queryset.

    Gender and age are not applied here (encrypted); see ``audience_ids_decrypted``."""
    organisation = require_organisation(organisation)
    contacts: QuerySet[Contact] = Contact.objects.for_organisation(organisation)
    languages = filters.get("languages")
    if languages:
        q = Q(preferred_language__in=languages)
        for language in languages:
            # "sl" also matches "sl-SI"; a contact without a language reads the clinic's.
            q |= Q(preferred_language__istartswith=f"{language}-")
        if (organisation.default_language or "")[:2].lower() in languages:
            q |= Q(preferred_language="")
        contacts = contacts.filter(q)
    if filters.get("source_kinds"):
        contacts = contacts.filter(source_kind__in=filters["source_kinds"])
    if filters.get("sources"):
        contacts = contacts.filter(source__in=filters["sources"])
    if filters.get("relationship_statuses"):
        contacts = contacts.filter(relationship_status__in=filters["relationship_statuses"])
    for key, lookup in (
        ("relationship_started_from", "relationship_started_at__gte"),
        ("relationship_started_to", "relationship_started_at__lte"),
        ("relationship_ended_from", "relationship_ended_at__gte"),
        ("relationship_ended_to", "relationship_ended_at__lte"),
    ):
        if filters.get(key):
            contacts = contacts.filter(**{lookup: dt.date.fromisoformat(filters[key])})
    contacts = _tags_filter(contacts, organisation, filters)
    for rule in filters.get("consent", []):
        contacts = contacts.filter(_consent_rule(organisation, rule))
    return contacts


def _consent_rule(organisation: Organisation, rule: Mapping[str, str]) -> Q:
    purpose = Purpose.objects.get_for_organisation(organisation, slug=rule["purpose"])
    channels = (
        [ConsentChannel.ALL]
        if rule["channel"] == ConsentChannel.ALL
        else [rule["channel"], ConsentChannel.ALL]
    )
    entries = ConsentEntry.objects.filter(
        organisation=organisation, contact=OuterRef("pk"), purpose=purpose, channel__in=channels
    )
    if rule["state"] == "none":
        return ~Q(Exists(entries))
    latest = entries.order_by("-recorded_at", "-pk").values("status")[:1]
    return Q(pk__in=_with_latest(organisation, latest, rule["state"]))


def _tags_filter(
    contacts: QuerySet[Contact], organisation: Organisation, filters: Mapping[str, Any]
) -> QuerySet[Contact]:
    """Tags match as the contacts app matches them (case does not matter), as EXISTS
    subqueries on the (tag, contact) index."""
    if filters.get("tags_any") or filters.get("tags_all"):
        contacts = contacts.filter(
            tag_filter_q(
                organisation,
                any_of=filters.get("tags_any", []),
                all_of=filters.get("tags_all", []),
            )
        )
    if filters.get("tags_none"):
        contacts = contacts.exclude(tag_filter_q(organisation, any_of=filters["tags_none"]))
    return contacts


# --- the encrypted part --------------------------------------------------------------------------
BATCH = 5000


class _DecryptedFilter:
    """Gender and age band on raw ciphertexts: a column is decrypted only when the filter
    needs it, and the birth date only for rows whose gender already matched."""

    def __init__(self, filters: Mapping[str, Any], today: dt.date) -> None:
        self.genders = set(filters.get("genders", []))
        self.ages = "age_min" in filters or "age_max" in filters
        self.age_min = filters.get("age_min", 0)
        self.age_max = filters.get("age_max", 130)
        self.today = today
        self.gender_field = Contact._meta.get_field("gender")
        self.birth_field = Contact._meta.get_field("birth_date")

    def match(self, gender: str | None, birth: str | None) -> bool:
        if self.genders:
            value = self.gender_field.from_db_value(gender, None, connection)
            if value not in self.genders:
                return False
        if self.ages:
            born = self.birth_field.from_db_value(birth, None, connection)
            if born is None:
                return False  # an age band cannot include someone whose age is unknown
            if not self.age_min <= age_on(born, self.today) <= self.age_max:
                return False
        return True


def audience_id_batches(
    *,
    organisation: Organisation,
    filters: Mapping[str, Any],
    after: int = 0,
    batch: int = BATCH,
    today: dt.date | None = None,
) -> Iterator[tuple[int, list[int]]]:
    """The audience's contact ids in ascending order, in batches, after contact id ``after``.

    Yields ``(last id looked at, matching ids)``: the first is the keyset cursor (it moves on
    even when the decrypted filter keeps nobody of a batch). Memory stays one batch whatever the
    audience's size.
    """
    base = audience_queryset(organisation=organisation, filters=filters)
    decrypt = needs_decryption(filters)
    matcher = _DecryptedFilter(filters, today or timezone.localdate())
    cursor = after
    while True:
        rows = base.filter(pk__gt=cursor).order_by("pk")
        if decrypt:
            # The ciphertexts as stored, without the fields' converters: ``_DecryptedFilter``
            # decrypts only what it needs.
            sql, params = rows.values_list("pk", "gender", "birth_date")[
                :batch
            ].query.sql_with_params()
            with connection.cursor() as db:
                db.execute(sql, params)
                page = db.fetchall()
            if not page:
                return
            cursor = page[-1][0]
            yield cursor, [pk for pk, g, b in page if matcher.match(g, b)]
        else:
            ids = list(rows.values_list("pk", flat=True)[:batch])
            if not ids:
                return
            cursor = ids[-1]
            yield cursor, ids
        if len(page if decrypt else ids) < batch:
            return


def audience_ids_decrypted(
    *, organisation: Organisation, filters: Mapping[str, Any], today: dt.date | None = None
) -> list[int]:
    """Every matching id when the filter names gender or age (ids only: a few MB at 100,000)."""
    return [
        pk
        for _, ids in audience_id_batches(
            organisation=organisation, filters=filters, batch=20000, today=today
        )
        for pk in ids
    ]


def audience_final_queryset(
    *, organisation: Organisation, filters: Mapping[str, Any], today: dt.date | None = None
) -> QuerySet[Contact]:
    """The whole audience as a queryset: layer 1, narrowed to the decrypted matches if needed."""
    contacts = audience_queryset(organisation=organisation, filters=filters)
    if needs_decryption(filters):
        ids = audience_ids_decrypted(organisation=organisation, filters=filters, today=today)
        contacts = Contact.objects.for_organisation(organisation).filter(
            values_in(Contact, "id", ids) if ids else Q(pk__in=[])
        )
    return contacts


# --- the count -----------------------------------------------------------------------------------
# Which reason an excluded contact is counted under when several apply (on one channel or across
# the campaign's channels): the one that says most about the person comes first, so "suppressed"
# wins over "no consent" and "no consent" over "no phone".
EXCLUSION_ORDER = (
    Reason.ORGANISATION_SUSPENDED,
    Reason.ERASED,
    Reason.RESTRICTED,
    Reason.OBJECTION,
    Reason.SUPPRESSED,
    Reason.WITHDRAWN,
    Reason.LAPSED,
    Reason.MINOR_WITHOUT_GUARDIAN_CONSENT,
    Reason.NO_CONSENT,
    Reason.NO_ADDRESS,
    "whatsapp_session_closed",
    "frequency_cap",
    "no_template",
    "invalid",
)


def exclusion_reason(reasons: Sequence[str]) -> str:
    """The one code an excluded contact is counted under (``EXCLUSION_ORDER``)."""
    order = {code: n for n, code in enumerate(EXCLUSION_ORDER)}
    return min(reasons, key=lambda r: order.get(r, len(order)))


@dataclass
class AudienceCount:
    """What the builder shows before sending; numbers only."""

    matched: int = 0
    eligible: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "eligible": self.eligible,
            "by_channel": dict(self.by_channel),
            "excluded": dict(sorted(self.excluded.items(), key=lambda kv: -kv[1])),
            "excluded_total": self.excluded_total,
        }


# Bits of the per-channel mask the count's query returns.
_RESTRICTED, _NO_ADDRESS, _OBJECTION, _SUPPRESSED = 1, 2, 4, 8
_NO_CONSENT, _WITHDRAWN, _LAPSED = 16, 32, 64
# The reasons in eligibility_decide's own order, so one channel's list reads the same.
_BITS = (
    (_RESTRICTED, Reason.RESTRICTED),
    (_NO_ADDRESS, Reason.NO_ADDRESS),
    (_OBJECTION, Reason.OBJECTION),
    (_SUPPRESSED, Reason.SUPPRESSED),
    (_NO_CONSENT, Reason.NO_CONSENT),
    (_WITHDRAWN, Reason.WITHDRAWN),
    (_LAPSED, Reason.LAPSED),
)


def mask_reasons(mask: int) -> list[str]:
    return [reason for bit, reason in _BITS if mask & bit]


def _lapse_ranges(now: dt.datetime) -> list[tuple[dt.datetime | None, dt.datetime]]:
    """The ``recorded_at`` ranges whose consent has lapsed by ``now``: ``lapse_due``'s rule
    (given + 2 years <= now, 29 February lapsing on 28 February) solved for the given moment.

    Mostly one range up to now minus two years; on 28 February after a leap year also 29
    February up to now's time, which ``add_years`` maps onto the same day as 28 February.
    """
    try:
        cutoff = now.replace(year=now.year - 2)
    except ValueError:  # now is 29 February: all of 28 February two years back has lapsed
        cutoff = now.replace(
            year=now.year - 2, day=28, hour=23, minute=59, second=59, microsecond=999999
        )
    ranges: list[tuple[dt.datetime | None, dt.datetime]] = [(None, cutoff)]
    if now.month == 2 and now.day == 28 and calendar.isleap(now.year - 2):
        leap_day = now.replace(year=now.year - 2, day=29)
        start = leap_day.replace(hour=0, minute=0, second=0, microsecond=0)
        ranges.append((start, leap_day))
    return ranges


def _count_sql(
    *,
    organisation: Organisation,
    audience: QuerySet[Contact],
    purpose_id: int,
    channels: Sequence[str],
    now: dt.datetime,
) -> tuple[str, list[Any]]:
    ops = connection.ops
    aud_sql, aud_params = (
        audience.values(
            "id",
            "restricted_at",
            "email_bidx",
            "phone_bidx",
            "external_id_bidx",
            "relationship_status",
            "relationship_started_at",
            "relationship_ended_at",
        )
        .order_by()
        .query.sql_with_params()
    )
    params: list[Any] = list(aud_params)
    ctes = [
        f"aud AS ({aud_sql})",
        "sup AS (SELECT digest FROM consent_suppressionentry WHERE organisation_id = %s)",
    ]
    params.append(organisation.pk)
    joins, masks = [], []
    today = ops.adapt_datefield_value(timezone.localdate(now))
    ranges = _lapse_ranges(now)
    lapsed_sql = " OR ".join(
        "{col} <= %s" if lo is None else "({col} >= %s AND {col} <= %s)" for lo, _ in ranges
    )
    lapsed_params = [
        ops.adapt_datetimefield_value(v) for lo, hi in ranges for v in (lo, hi) if v is not None
    ]
    live = (
        "(a.relationship_status = 'active'"
        " AND (a.relationship_started_at IS NULL OR a.relationship_started_at <= %s)"
        " AND (a.relationship_ended_at IS NULL OR a.relationship_ended_at > %s))"
    )
    # The audience's entries for the purpose are read once for all the channels (with three
    # channels, reading them per channel was two thirds of the count's time); each channel
    # then takes its latest entry, "all" entries counting for every channel.
    ctes.append(
        "ent AS (SELECT e.id, e.contact_id, e.channel, e.status, e.cause, e.recorded_at"
        " FROM consent_consententry e"
        " WHERE e.organisation_id = %s AND e.purpose_id = %s"
        f"  AND e.channel IN ({', '.join(['%s'] * len(channels))}, 'all')"
        "  AND e.contact_id IN (SELECT id FROM aud))"
    )
    params += [organisation.pk, purpose_id, *channels]
    for n, channel in enumerate(channels):
        ctes.append(
            f"l{n} AS (SELECT contact_id, status, cause, recorded_at FROM ("
            " SELECT contact_id, status, cause, recorded_at, ROW_NUMBER() OVER ("
            "  PARTITION BY contact_id ORDER BY recorded_at DESC, id DESC) AS rn"
            " FROM ent WHERE channel IN (%s, 'all')) x WHERE rn = 1)"
        )
        params.append(channel)
        joins.append(f"LEFT JOIN l{n} ON l{n}.contact_id = a.id")
        address = "a.email_bidx" if channel == "email" else "a.phone_bidx"
        masks.append(
            f"(CASE WHEN COALESCE({address}, '') = '' THEN {_NO_ADDRESS} ELSE 0 END"
            f" + CASE WHEN l{n}.status IS NULL THEN {_NO_CONSENT}"
            f"  WHEN l{n}.status = 'withdrawn' AND l{n}.cause = 'lapsed' THEN {_LAPSED}"
            f"  WHEN l{n}.status = 'withdrawn' THEN {_WITHDRAWN}"
            f"  WHEN NOT {live} AND ({lapsed_sql.format(col=f'l{n}.recorded_at')})"
            f"  THEN {_LAPSED}"
            f"  ELSE 0 END) AS m{n}"
        )
    mask_params: list[Any] = []
    for _ in channels:
        mask_params += [today, today, *lapsed_params]
    # IN (subquery) rather than a correlated EXISTS: the database hashes the organisation's
    # objections and suppression list once instead of probing them per contact.
    person = (
        f"(CASE WHEN a.restricted_at IS NOT NULL THEN {_RESTRICTED} ELSE 0 END"
        " + CASE WHEN a.id IN (SELECT o.contact_id FROM consent_objection o"
        "  WHERE o.organisation_id = %s AND o.kind = 'direct_marketing')"
        f"  THEN {_OBJECTION} ELSE 0 END"
        " + CASE WHEN a.email_bidx IN (SELECT digest FROM sup)"
        "  OR a.phone_bidx IN (SELECT digest FROM sup)"
        "  OR a.external_id_bidx IN (SELECT digest FROM sup)"
        f"  THEN {_SUPPRESSED} ELSE 0 END) AS p"
    )
    person_params = [organisation.pk]
    columns = ", ".join(f"m{n}" for n in range(len(channels)))
    # Only this module's own SQL text and Django's compiled audience are joined; every value is a
    # parameter.
    sql = (
        "WITH " + ", ".join(ctes) + f" SELECT p, {columns}, COUNT(*) FROM ("
        f"SELECT {person}, {', '.join(masks)} FROM aud a {' '.join(joins)}"
        f") t GROUP BY p, {columns}"
    )
    return sql, params + person_params + mask_params


def contact_channel_reasons(
    *,
    organisation: Organisation,
    contact_ids: Sequence[int],
    purpose: str,
    channels: Sequence[str],
    now: dt.datetime | None = None,
) -> dict[int, dict[str, list[str]]]:
    """Per contact and channel, ``eligibility_decide``'s refusal reasons (empty: may receive):
    the flagged minors of the count, and the materialiser's choice of channel."""
    now = now or timezone.now()
    out: dict[int, dict[str, list[str]]] = {pk: {} for pk in contact_ids}
    for channel in channels:
        decisions = eligibility_decide(
            organisation=organisation,
            contact_ids=contact_ids,
            kind="marketing",
            channel=channel,
            purpose=purpose,
            now=now,
        )
        for pk, decision in decisions.items():
            out[pk][channel] = list(decision.reasons)
    return out


def combine_channels(
    per_channel: Mapping[str, Sequence[str]], channels: Sequence[str]
) -> tuple[str | None, str | None]:
    """``(channel, None)`` for the first channel in preference order with no refusal, or
    ``(None, reason)`` with the one reason the contact is counted under."""
    for channel in channels:
        if not per_channel.get(channel):
            return channel, None
    reasons = [r for channel in channels for r in per_channel.get(channel, [])]
    return None, exclusion_reason(reasons or [Reason.NO_CONSENT])


def audience_count(
    *,
    organisation: Organisation,
    filters: Mapping[str, Any],
    purpose: str,
    channels: Sequence[str],
    now: dt.datetime | None = None,
) -> AudienceCount:
    """How many contacts the filter selects, how many may receive a marketing message for
    ``purpose`` on the first of ``channels`` they can, and why the others may not (MSG-4).

    One grouped query for everyone but flagged minors, whatever the audience's size; flagged
    minors (whose guardian's consent needs the decrypted birth date, CNT-6) are few and decided
    by ``eligibility_decide`` itself. A filter on gender or age adds the streamed decryption of
    those two columns.
    """
    organisation = require_organisation(organisation)
    now = now or timezone.now()
    channels = [c for c in channels if c in CONCRETE_CHANNELS]
    if not channels:
        raise AudienceInvalid({"channels": "name at least one of sms, email, whatsapp."})
    purpose_id = (
        Purpose.objects.for_organisation(organisation)
        .filter(slug=purpose)
        .values_list("pk", flat=True)
        .first()
    )
    if purpose_id is None:
        raise AudienceInvalid({"purpose": f"no purpose {purpose!r} in this organisation."})
    audience = audience_final_queryset(
        organisation=organisation, filters=filters, today=timezone.localdate(now)
    )
    result = AudienceCount(by_channel={c: 0 for c in channels})
    suspended = (
        Organisation.objects.filter(pk=organisation.pk)
        .values_list("suspended_at", flat=True)
        .first()
    )
    if suspended is not None:
        result.matched = audience.count()
        if result.matched:
            result.excluded[Reason.ORGANISATION_SUSPENDED] = result.matched
        return result
    sql, params = _count_sql(
        organisation=organisation,
        audience=audience.filter(is_minor=False),
        purpose_id=purpose_id,
        channels=channels,
        now=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        groups = cursor.fetchall()
    for person, *rest in groups:
        *masks, count = rest
        per_channel = {c: mask_reasons(m | person) for c, m in zip(channels, masks, strict=True)}
        channel, reason = combine_channels(per_channel, channels)
        _tally(result, channel, reason, count)
        result.matched += count
    minors = list(audience.filter(is_minor=True).values_list("pk", flat=True))
    if minors:
        decided = contact_channel_reasons(
            organisation=organisation,
            contact_ids=minors,
            purpose=purpose,
            channels=channels,
            now=now,
        )
        for per_channel in decided.values():
            channel, reason = combine_channels(per_channel, channels)
            _tally(result, channel, reason, 1)
            result.matched += 1
    return result


def _tally(result: AudienceCount, channel: str | None, reason: str | None, count: int) -> None:
    if channel is not None:
        result.eligible += count
        result.by_channel[channel] += count
    else:
        assert reason is not None
        result.excluded[reason] = result.excluded.get(reason, 0) + count
