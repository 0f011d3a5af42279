"""Writes over consent: the ledger (CON-1, CON-2), objections (DSR-11), suppression (CON-6) and
the lapse of old consent (CON-5).

Every write is audited (ids and codes only) in its own transaction. Suspension (TEN-3) refuses
the writes that add processing (giving consent, publishing a wording, grounds to continue after
an objection); the writes that reduce it (withdrawal, objection, suppression, lapse) are always
accepted: they are the person's rights, and a clinic's unpaid invoice must not keep a patient on a
list. For the same reason a restricted contact (CNT-4) may withdraw and object but not give.
Withdrawals announce themselves on commit through ``consent.signals.consent_withdrawn``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from carely.audit.context import Actor, acting_as, current_actor
from carely.audit.models import ActorType
from carely.audit.services import audit_record
from carely.lib.normalise import InvalidPhoneNumber
from carely.orgs.models import Membership, Organisation, User
from carely.orgs.permissions import may
from carely.orgs.roles import Perm
from carely.orgs.suspension import suspension_check_write
from carely.privacy.fields import blind_indexes
from consent.models import (
    CONCRETE_CHANNELS,
    Cause,
    Channel,
    ConsentEntry,
    Objection,
    ObjectionKind,
    Purpose,
    Source,
    Status,
    SuppressionEntry,
    SuppressionKind,
    SuppressionReason,
    Wording,
)
from consent.selectors import add_years, consent_states, lapse_due, relationship_is_live
from consent.signals import consent_withdrawn_send_on_commit
from contacts.models import Contact
from contacts.services import ContactRestricted

__all__ = [
    "ConsentInvalid",
    "ContactRestricted",
    "GroundsRefused",
    "LapseReport",
    "consent_give",
    "consent_lapse_run",
    "consent_record",
    "consent_withdraw",
    "objection_grounds_record",
    "objection_record",
    "suppression_add",
    "wording_publish",
]

MARKETING_PURPOSE = "marketing"
USER_AGENT_MAX = 500
NOTE_MAX = 1000
# A clock a little ahead on the client's side is not a reason to refuse evidence.
_FUTURE_TOLERANCE = dt.timedelta(minutes=5)


class ConsentInvalid(ValueError):
    """One or more inputs are wrong; ``errors`` is ``{field: [message, ...]}``."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


class GroundsRefused(ValueError):
    """Compelling grounds cannot be recorded as asked; the message says why."""


def _choices(values: Iterable[str]) -> str:
    return ", ".join(f"“{v}”" for v in values)


def _actor_columns(actor: Actor) -> dict[str, Any]:
    """Who recorded an entry, from the audit context (a signed-in person or an API key)."""
    if actor.type == ActorType.USER and actor.id.isdigit():
        return {"recorded_by_id": int(actor.id)}
    if actor.type == ActorType.API_KEY and actor.id.isdigit():
        return {"api_key_id": int(actor.id)}
    return {}


def _purpose(organisation: Organisation, purpose: Purpose | str, errors: dict) -> Purpose | None:
    if isinstance(purpose, Purpose):
        if purpose.organisation_id != organisation.pk:
            errors["purpose"] = ["This purpose belongs to another organisation."]
            return None
        return purpose
    found = Purpose.objects.for_organisation(organisation).filter(slug=purpose).first()
    if found is None:
        known = Purpose.objects.for_organisation(organisation).values_list("slug", flat=True)
        errors["purpose"] = [
            f"No purpose “{purpose}” in this organisation. Use one of: {_choices(known)}."
        ]
    return found


def _wording(
    contact: Contact, purpose: Purpose, version: str, errors: dict[str, list[str]]
) -> Wording | None:
    """The wording of this version, in the contact's language, else the organisation's, else
    the first one published (the API names a version, not a language)."""
    wordings = list(
        Wording.objects.for_organisation(contact.organisation).filter(
            purpose=purpose, version=version
        )
    )
    if not wordings:
        versions = sorted(
            set(
                Wording.objects.for_organisation(contact.organisation)
                .filter(purpose=purpose)
                .values_list("version", flat=True)
            )
        )
        advice = (
            f"Published versions: {_choices(versions)}."
            if versions
            else "Publish the wording first."
        )
        errors["wording_version"] = [
            f"No wording version “{version}” for the purpose “{purpose.slug}”. {advice}"
        ]
        return None
    by_language = {w.language: w for w in wordings}
    for language in (contact.preferred_language, contact.organisation.default_language):
        if language in by_language:
            return by_language[language]
    return min(wordings, key=lambda w: w.pk)


def _guardian(contact: Contact, guardian: Contact | None, errors: dict) -> Contact | None:
    guardian = guardian or contact.guardian
    if guardian is None:
        errors["source"] = [
            "Consent from a parent or guardian needs the guardian recorded on the contact "
            "first (the contact's “guardian” field)."
        ]
        return None
    if guardian.organisation_id != contact.organisation_id or guardian.pk == contact.pk:
        errors["guardian"] = ["The guardian must be another contact of the same organisation."]
        return None
    if guardian.is_minor:
        errors["guardian"] = ["The guardian is a minor; a parent or guardian must be an adult."]
        return None
    return guardian


def _check_ip(value: str, errors: dict[str, list[str]]) -> str:
    text = (value or "").strip()
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        errors["ip_address"] = [f"“{text[:60]}” is not an IPv4 or IPv6 address; leave it out."]
        return ""


def consent_record(
    *,
    contact: Contact,
    purpose: Purpose | str,
    channel: str,
    status: str,
    source: str,
    wording_version: str | None = None,
    guardian: Contact | None = None,
    ip_address: str = "",
    user_agent: str = "",
    note: str = "",
    recorded_at: dt.datetime | None = None,
    cause: str = Cause.NONE,
) -> ConsentEntry:
    """Append one entry to the contact's ledger (CON-1) and return it.

    ``channel`` may be "all" (every channel). Giving consent needs ``wording_version`` (the text
    shown); a withdrawal may name it. ``source="guardian"`` records the consent of the minor's
    parent or guardian (``guardian``, else the contact's own guardian), which is what makes a
    minor's consent count (CNT-6). ``recorded_at`` defaults to now (imports pass the original
    time; never in the future). Raises ``ConsentInvalid`` naming each bad field,
    ``ContactRestricted`` (giving only), ``OrganisationSuspended`` (giving only).
    """
    organisation = contact.organisation
    errors: dict[str, list[str]] = {}
    if status not in Status.values:
        errors["status"] = [f"Use {_choices(Status.values)}."]
    if channel not in Channel.values:
        errors["channel"] = [f"Use one of {_choices(Channel.values)}."]
    if source not in Source.values:
        errors["source"] = [f"Use one of {_choices(Source.values)}."]
    if cause not in Cause.values:
        raise ValueError(f"unknown cause {cause!r}")
    giving = status == Status.GIVEN
    if giving:
        suspension_check_write(organisation)
        if contact.is_restricted:
            raise ContactRestricted(contact)
    found_purpose = _purpose(organisation, purpose, errors)
    wording = None
    version = (wording_version or "").strip()
    if found_purpose is not None and version:
        wording = _wording(contact, found_purpose, version, errors)
    elif giving and not version:
        errors["wording_version"] = [
            "Say which version of the consent text the person was shown (CON-1)."
        ]
    guardian_contact = _guardian(contact, guardian, errors) if source == Source.GUARDIAN else None
    ip = _check_ip(ip_address, errors)
    now = timezone.now()
    if recorded_at is not None and recorded_at > now + _FUTURE_TOLERANCE:
        errors["recorded_at"] = ["The time is in the future; give when it was recorded."]
    if len(note) > NOTE_MAX:
        errors["note"] = [f"Keep the note under {NOTE_MAX} characters."]
    if errors:
        raise ConsentInvalid(errors)
    assert found_purpose is not None
    entry = ConsentEntry(
        organisation=organisation,
        contact=contact,
        purpose=found_purpose,
        channel=channel,
        status=status,
        wording=wording,
        source=source,
        cause=cause,
        guardian=guardian_contact,
        recorded_at=recorded_at or now,
        ip_address=ip,
        user_agent=(user_agent or "").strip()[:USER_AGENT_MAX],
        note=note.strip(),
        **_actor_columns(current_actor()),
    )
    with transaction.atomic():
        entry.save()
        audit_record(
            action=f"consent.{status}",
            organisation=organisation,
            object_type="contact",
            object_id=contact.pk,
            details={
                "entry_id": entry.pk,
                "purpose": found_purpose.slug,
                "channel": channel,
                "source": source,
                "cause": cause,
                "wording_id": wording.pk if wording else None,
            },
        )
        if not giving:
            _announce(entry, found_purpose.slug)
    return entry


def _announce(entry: ConsentEntry, purpose_slug: str) -> None:
    consent_withdrawn_send_on_commit(
        sender=ConsentEntry,
        organisation_id=entry.organisation_id,
        contact_id=entry.contact_id,
        entry_id=entry.pk,
        purpose=purpose_slug,
        channels=CONCRETE_CHANNELS if entry.channel == Channel.ALL else (entry.channel,),
        cause=entry.cause,
    )


def consent_give(**kwargs: Any) -> ConsentEntry:
    """``consent_record(status="given", ...)``."""
    return consent_record(status=Status.GIVEN, **kwargs)


def consent_withdraw(**kwargs: Any) -> ConsentEntry:
    """``consent_record(status="withdrawn", ...)``: takes effect at once. Eligibility reads the
    ledger, so nothing is sent on the strength of the old consent from the commit on, and
    ``consent_withdrawn`` tells queued work (CON-2). Accepted for restricted contacts and
    suspended organisations."""
    return consent_record(status=Status.WITHDRAWN, **kwargs)


def wording_publish(
    *, organisation: Organisation, purpose: Purpose | str, version: str, language: str, text: str
) -> Wording:
    """A new version of a consent text. Published versions never change (``WordingInUse``)."""
    suspension_check_write(organisation)
    errors: dict[str, list[str]] = {}
    found = _purpose(organisation, purpose, errors)
    version, language, text = version.strip(), language.strip().lower(), text.strip()
    if not version or len(version) > 20:
        errors["version"] = [
            "Give a version of at most 20 characters, for example “2” or “2025-03”."
        ]
    if not language or len(language) > 8:
        errors["language"] = ["Give a language code such as “sl” or “en”."]
    if not text:
        errors["text"] = ["Write the text the person will be shown."]
    if found is not None and not errors:
        exists = Wording.objects.for_organisation(organisation).filter(
            purpose=found, version=version, language=language
        )
        if exists.exists():
            errors["version"] = [
                f"Version “{version}” ({language}) is already published; use a new version."
            ]
    if errors or found is None:
        raise ConsentInvalid(errors)
    with transaction.atomic():
        wording = Wording.objects.create(
            organisation=organisation, purpose=found, version=version, language=language, text=text
        )
        audit_record(
            action="consent.wording_published",
            organisation=organisation,
            object_type="wording",
            object_id=wording.pk,
            details={"purpose": found.slug, "version": version},
        )
    return wording


# --- suppression and objections -----------------------------------------------------------------


def _contact_digests(contact: Contact) -> dict[str, str]:
    """The contact's blind indexes are the suppression digests: same key, purpose and normal
    form (``keyed_hash(normalised, purpose=kind)``)."""
    return {
        kind: digest
        for kind, digest in (
            (SuppressionKind.EMAIL, contact.email_bidx),
            (SuppressionKind.PHONE, contact.phone_bidx),
            (SuppressionKind.EXTERNAL_ID, contact.external_id_bidx),
        )
        if digest
    }


def _suppress(
    organisation: Organisation, digests: dict[str, str], *, reason: str, source: str
) -> int:
    """Insert the missing entries; returns how many are new."""
    existing = set(
        SuppressionEntry.objects.for_organisation(organisation)
        .filter(digest__in=list(digests.values()))
        .values_list("kind", "digest")
    )
    new = [
        SuppressionEntry(
            organisation=organisation, kind=kind, digest=digest, reason=reason, source=source
        )
        for kind, digest in digests.items()
        if (kind, digest) not in existing
    ]
    # ignore_conflicts: two objections at once for the same address must not fail one of them.
    SuppressionEntry.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def suppression_add(
    *,
    organisation: Organisation,
    email: str = "",
    phone: str = "",
    external_id: str = "",
    source: str = Source.STAFF,
    reason: str = SuppressionReason.REQUEST,
) -> int:
    """Never send marketing to these addresses (CON-6), whoever they belong to now or later.

    Values are normalised as the contacts' blind indexes are (phones in the organisation's
    region) and only their keyed hashes are stored. Returns how many entries are new. Accepted
    while the organisation is suspended (it only reduces processing).
    """
    errors: dict[str, list[str]] = {}
    if source not in Source.values:
        errors["source"] = [f"Use one of {_choices(Source.values)}."]
    if reason not in SuppressionReason.values:
        errors["reason"] = [f"Use one of {_choices(SuppressionReason.values)}."]
    indexes = blind_indexes(Contact)
    digests: dict[str, str] = {}
    for kind, value in (("email", email), ("phone", phone), ("external_id", external_id)):
        if not (value or "").strip():
            continue
        if kind == "email" and "@" not in value:
            errors["email"] = [f"“{value.strip()[:80]}” is not an e-mail address."]
            continue
        try:
            digest = indexes[kind].digest(value, region=organisation.default_phone_region)
        except InvalidPhoneNumber as exc:
            errors[kind] = [str(exc)]
            continue
        if digest:
            digests[kind] = digest
    if not digests and not errors:
        errors["email"] = ["Give at least one of e-mail, phone or external id."]
    if errors:
        raise ConsentInvalid(errors)
    with transaction.atomic():
        added = _suppress(organisation, digests, reason=reason, source=source)
        audit_record(
            action="consent.suppression_added",
            organisation=organisation,
            object_type="suppression",
            details={"kinds": sorted(digests), "added": added, "source": source},
        )
    return added


def objection_record(
    *,
    contact: Contact,
    kind: str,
    source: str,
    received_at: dt.datetime | None = None,
    note: str = "",
) -> Objection:
    """Record an objection (DSR-11).

    Direct marketing (CON-6): permanent. The contact's e-mail, phone and external id go on the
    suppression list (keyed hashes that survive erasure) and marketing is withdrawn on all
    channels (ledger entries with cause "objection"). Eligibility then refuses every marketing
    message to the contact or to anyone presenting those addresses again.
    Legitimate interest: transactional messages stop until the DPO records compelling grounds
    (``objection_grounds_record``).
    Accepted for restricted contacts and suspended organisations.
    """
    errors: dict[str, list[str]] = {}
    if kind not in ObjectionKind.values:
        errors["kind"] = [f"Use one of {_choices(ObjectionKind.values)}."]
    if source not in Source.values:
        errors["source"] = [f"Use one of {_choices(Source.values)}."]
    now = timezone.now()
    if received_at is not None and received_at > now + _FUTURE_TOLERANCE:
        errors["received_at"] = ["The time is in the future; give when the objection arrived."]
    if len(note) > NOTE_MAX:
        errors["note"] = [f"Keep the note under {NOTE_MAX} characters."]
    if errors:
        raise ConsentInvalid(errors)
    organisation = contact.organisation
    with transaction.atomic():
        objection = Objection.objects.create(
            organisation=organisation,
            contact=contact,
            kind=kind,
            source=source,
            received_at=received_at or now,
            note=note.strip(),
        )
        suppressed = 0
        withdrawal_id = None
        if kind == ObjectionKind.DIRECT_MARKETING:
            suppressed = _suppress(
                organisation,
                _contact_digests(contact),
                reason=SuppressionReason.OBJECTION,
                source=source,
            )
            marketing = Purpose.objects.for_organisation(organisation).filter(
                slug=MARKETING_PURPOSE
            )
            purpose = marketing.first()
            if purpose is not None:
                withdrawal_id = consent_record(
                    contact=contact,
                    purpose=purpose,
                    channel=Channel.ALL,
                    status=Status.WITHDRAWN,
                    source=source,
                    cause=Cause.OBJECTION,
                    note="Objection to direct marketing.",
                ).pk
        audit_record(
            action="consent.objection_recorded",
            organisation=organisation,
            object_type="contact",
            object_id=contact.pk,
            details={
                "objection_id": objection.pk,
                "kind": kind,
                "source": source,
                "suppression_added": suppressed,
                "withdrawal_entry_id": withdrawal_id,
            },
        )
    return objection


def objection_grounds_record(*, objection: Objection, reason: str, recorded_by: User) -> Objection:
    """The DPO records compelling legitimate grounds that override a legitimate-interest
    objection (DSR-11, Art. 21(1) GDPR): who, when and why, once. Transactional messages may
    then continue, on legitimate interest. Raises ``GroundsRefused``, ``OrganisationSuspended``.
    """
    organisation = objection.organisation
    suspension_check_write(organisation)
    membership = Membership.objects.filter(organisation=organisation, user=recorded_by).first()
    if not may(user=recorded_by, membership=membership, perm=Perm.DSR_REVIEW):
        raise GroundsRefused(
            "Only the organisation's data protection officer can record compelling grounds."
        )
    if objection.kind != ObjectionKind.LEGITIMATE_INTEREST:
        raise GroundsRefused(
            "An objection to direct marketing is absolute; no grounds can override it."
        )
    if objection.has_grounds:
        raise GroundsRefused("Grounds for this objection are already recorded.")
    text = (reason or "").strip()
    if not text:
        raise GroundsRefused(
            "Write the compelling legitimate grounds that override the person's interests."
        )
    with transaction.atomic():
        objection.grounds_reason = text
        objection.grounds_recorded_by = recorded_by
        objection.grounds_recorded_at = timezone.now()
        objection.save(
            update_fields=["grounds_reason", "grounds_recorded_by", "grounds_recorded_at"]
        )
        audit_record(
            action="consent.objection_grounds_recorded",
            organisation=organisation,
            object_type="contact",
            object_id=objection.contact_id,
            details={"objection_id": objection.pk},
        )
    return objection


# --- lapse (CON-5) -------------------------------------------------------------------------------

LAPSE_BATCH = 1000


@dataclass
class LapseReport:
    """What a lapse run wrote (or would write): counts and ids only."""

    dry_run: bool
    now: dt.datetime
    entries: int = 0
    by_organisation: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "entries": self.entries,
            "by_organisation": {str(k): v for k, v in sorted(self.by_organisation.items())},
        }


def consent_lapse_run(
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    organisations: Sequence[Organisation] | None = None,
) -> LapseReport:
    """Withdraw consent given two years ago or more by contacts without a live business
    relationship, unless renewed since (CON-5).

    Each lapse is a withdrawal entry with source "system" and cause "lapsed", whose note says
    when the consent was given, so the ledger shows why. A channel whose current entry came from
    an "all" entry lapses with it in one "all" entry when all three do, else channel by channel.
    Safe to re-run: a lapsed channel's current entry is the withdrawal, so it is not found again.
    Runs for suspended organisations too (it only reduces processing).
    """
    now = now or timezone.now()
    report = LapseReport(dry_run=dry_run, now=now)
    cutoff = add_years(now, -2)
    # Old "given" entries, whoever has them: a cheap index scan that finds the candidates.
    candidates = ConsentEntry.objects.filter(status=Status.GIVEN, recorded_at__lte=cutoff)
    if organisations is not None:
        candidates = candidates.filter(organisation__in=list(organisations))
    organisation_ids = sorted(set(candidates.values_list("organisation_id", flat=True)))
    with acting_as(Actor.system("consent_lapse")):
        for organisation in Organisation.objects.filter(pk__in=organisation_ids).order_by("pk"):
            contact_ids = sorted(
                set(
                    candidates.filter(organisation=organisation).values_list(
                        "contact_id", flat=True
                    )
                )
            )
            written = 0
            for start in range(0, len(contact_ids), LAPSE_BATCH):
                batch = contact_ids[start : start + LAPSE_BATCH]
                written += _lapse_batch(organisation, batch, now, dry_run)
            if written:
                report.by_organisation[organisation.pk] = written
                report.entries += written
    return report


def _lapse_batch(
    organisation: Organisation, contact_ids: list[int], now: dt.datetime, dry_run: bool
) -> int:
    today = timezone.localdate(now)
    live = {
        pk
        for pk, status, started, ended in Contact.objects.for_organisation(organisation)
        .filter(pk__in=contact_ids)
        .values_list(
            "pk", "relationship_status", "relationship_started_at", "relationship_ended_at"
        )
        if relationship_is_live(status, started, ended, today)
    }
    states = consent_states(organisation=organisation, contact_ids=contact_ids)
    purposes = dict(Purpose.objects.for_organisation(organisation).values_list("slug", "pk"))
    # (contact, purpose) -> {concrete channel: the given entry that lapses}
    lapsing: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
    for contact_id, per_key in states.items():
        if contact_id in live:
            continue
        for (slug, channel), state in per_key.items():
            if state.current.is_given and lapse_due(state.current.recorded_at, now):
                lapsing[(contact_id, slug)][channel] = state.current
    entries: list[ConsentEntry] = []
    for (contact_id, slug), channels in sorted(lapsing.items()):
        refs = list(channels.values())
        whole = (
            len(channels) == len(CONCRETE_CHANNELS)
            and len({r.id for r in refs}) == 1
            and refs[0].channel == Channel.ALL
        )
        for channel, ref in [(Channel.ALL, refs[0])] if whole else sorted(channels.items()):
            given = timezone.localdate(ref.recorded_at).isoformat()
            entries.append(
                ConsentEntry(
                    organisation=organisation,
                    contact_id=contact_id,
                    purpose_id=purposes[slug],
                    channel=channel,
                    status=Status.WITHDRAWN,
                    source=Source.SYSTEM,
                    cause=Cause.LAPSED,
                    recorded_at=now,
                    note=(
                        f"Lapsed: given on {given} (entry #{ref.id}) without a business "
                        "relationship and not renewed within two years (CON-5)."
                    ),
                )
            )
    if dry_run or not entries:
        return len(entries)
    with transaction.atomic():
        ConsentEntry.objects.bulk_create(entries, batch_size=500)
        audit_record(
            action="consent.lapsed",
            organisation=organisation,
            object_type="contact",
            details={
                "entries": len(entries),
                "contact_ids": sorted({e.contact_id for e in entries}),
            },
        )
        slugs = {pk: slug for slug, pk in purposes.items()}
        for entry in entries:
            _announce(entry, slugs[entry.purpose_id])
    return len(entries)


def consent_record_wording(*, contact: Contact, wording: Wording, **kwargs: Any) -> ConsentEntry:
    """``consent_record`` for the exact wording the person was shown, in its own language.

    ``consent_record`` names a version and picks its language from the contact's preferences;
    a form shows one text in the page's language, and the evidence must point to that text.
    The contact's language is set on a copy (never saved), and a mismatch rolls back.
    """
    if wording.organisation_id != contact.organisation_id:
        raise ConsentInvalid({"wording_version": ["This wording belongs to another organisation."]})
    from copy import copy  # here, to keep this addition to the end of the module

    shown = copy(contact)
    shown.preferred_language = wording.language
    with transaction.atomic():
        entry = consent_record(
            contact=shown,
            purpose=wording.purpose,
            wording_version=wording.version,
            **kwargs,
        )
        if entry.wording_id != wording.pk:
            raise ConsentInvalid({"wording_version": ["The wording shown could not be recorded."]})
    return entry
