"""The eligibility decision (CON-3, CON-4, CON-7, CNT-6, MSG-5): may this message go to these
contacts, on what legal basis, and if not, why.

``eligibility_decide`` is the ONLY function messaging may use to decide whether to send. Dispatch
calls it again for every message, just before handing it to the provider (MSG-5), so it works on
batches with a fixed number of queries (at most six, whatever the batch size).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Case, F, Value, When
from django.utils import timezone

from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation
from consent.models import (
    CONCRETE_CHANNELS,
    Cause,
    Channel,
    Objection,
    ObjectionKind,
    Purpose,
    Status,
    SuppressionEntry,
)
from consent.selectors import (
    ConsentState,
    consent_latest,
    lapse_due,
    relationship_is_live,
    values_in,
)
from contacts.models import Contact
from contacts.validation import is_minor


class Kind:
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


KINDS = (Kind.MARKETING, Kind.TRANSACTIONAL)


class Reason:
    """Stable refusal codes: clients and reports switch on them; never rename one."""

    NO_CONSENT = "no_consent"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"
    OBJECTION = "objection"
    SUPPRESSED = "suppressed"
    RESTRICTED = "restricted"
    ERASED = "erased"
    MINOR_WITHOUT_GUARDIAN_CONSENT = "minor_without_guardian_consent"
    NO_ADDRESS = "no_address"
    NO_RELATIONSHIP = "no_relationship"
    ORGANISATION_SUSPENDED = "organisation_suspended"


class LegalBasis:
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"
    LEGAL_OBLIGATION = "legal_obligation"


# Transactional purposes the controller owes by law rather than by contract: answering a
# data-subject request (GDPR Art. 12). They reach a person whatever the relationship, a
# restriction (Art. 18(3) even requires telling the subject) or an objection; only an address
# on file is needed.
LEGAL_OBLIGATION_PURPOSES = frozenset({"data_subject_request"})


@dataclass(frozen=True)
class Decision:
    """Allowed, on ``legal_basis`` (with ``consent_entry_id``, the entry that allows it, for
    consent: CON-7), or refused for every one of ``reasons``.

    ``guardian_consent_entry_id``: for a minor, the guardian's entry that makes the consent count.
    """

    contact_id: int
    allowed: bool
    legal_basis: str | None
    consent_entry_id: int | None = None
    reasons: list[str] = field(default_factory=list)
    guardian_consent_entry_id: int | None = None


class EligibilityQueryError(ValueError):
    """The question itself is wrong (unknown kind, channel or purpose): a programming error."""


# WhatsApp reaches the phone number.
_USES_EMAIL: dict[str, bool] = {Channel.EMAIL: True, Channel.SMS: False, Channel.WHATSAPP: False}
_CONTACT_COLUMNS = (
    "pk",
    "email_bidx",
    "phone_bidx",
    "external_id_bidx",
    "restricted_at",
    "relationship_status",
    "relationship_started_at",
    "relationship_ended_at",
    "minor_birth_date",
)
# The stored flag is a superset of today's minors (it goes stale only on an 18th birthday, and
# nobody under 13 is stored, CNT-6), so only flagged contacts' birth dates are decrypted and the
# age is computed afresh from them.
_MINOR_BIRTH_DATE = Case(When(is_minor=True, then=F("birth_date")), default=Value(None))


# Plain strings for the per-contact loop: comparing with enum members is several times slower.
_DIRECT_MARKETING = ObjectionKind.DIRECT_MARKETING.value
_WITHDRAWN, _GIVEN, _LAPSED = Status.WITHDRAWN.value, Status.GIVEN.value, Cause.LAPSED.value


def eligibility_decide(
    *,
    organisation: Organisation,
    contact_ids: Iterable[int],
    kind: str,
    channel: str,
    purpose: str | None = None,
    now: dt.datetime | None = None,
) -> dict[int, Decision]:
    """Decide, for each contact id, whether a ``kind`` message may go out on ``channel``.

    This is the only function the messaging code may use to decide whether a message may be
    sent; it is called at dispatch time for every message (MSG-5), not only when a campaign is
    planned.

    - ``kind="marketing"`` needs ``purpose`` (a slug) and current consent for that purpose and
      channel (CON-3; "all" entries count for each channel), not withdrawn, not lapsed (CON-5),
      for a minor also a parent's or guardian's consent (CNT-6), and no direct-marketing
      objection or suppression entry matching the contact's e-mail, phone or external id (CON-6).
      Basis: "consent", with the entry that gives it.
    - ``kind="transactional"`` needs a live relationship (status active, started, not ended) and
      is never blocked by a marketing opt-out, but an objection on legitimate interest stops it
      until the DPO records compelling grounds (CON-4, DSR-11). Basis: "contract", or
      "legitimate_interest" when it continues on recorded grounds despite an objection.
    - Both need the channel's address (WhatsApp uses the phone), an unrestricted contact (CNT-4)
      and an organisation that is not suspended (TEN-3). An id that no longer exists in the
      organisation is "erased".
    - A transactional message for a purpose in ``LEGAL_OBLIGATION_PURPOSES`` (answering a
      data-subject request) needs only the channel's address. Basis: "legal_obligation".

    Refusals list every reason that applies (``Reason``), so a report can say all of them.
    Raises ``EligibilityQueryError`` for an unknown kind, channel or purpose.
    """
    organisation = require_organisation(organisation)
    if kind not in KINDS:
        raise EligibilityQueryError(f"kind must be one of {KINDS}, not {kind!r}")
    if channel not in CONCRETE_CHANNELS:
        raise EligibilityQueryError(f"channel must be one of {CONCRETE_CHANNELS}, not {channel!r}")
    marketing = kind == Kind.MARKETING
    if marketing and not purpose:
        raise EligibilityQueryError("a marketing decision needs the purpose's slug")
    now = now or timezone.now()
    today = timezone.localdate(now)
    ids = sorted({int(i) for i in contact_ids})

    # 1. The organisation as it is now: a worker's copy may predate a suspension.
    suspended_at = (
        Organisation.objects.filter(pk=organisation.pk)
        .values_list("suspended_at", flat=True)
        .first()
    )
    # 2. The purpose must exist, or every contact would silently read as "no consent".
    purpose_id = None
    if marketing:
        purposes = Purpose.objects.for_organisation(organisation).filter(slug=purpose)
        purpose_id = purposes.values_list("pk", flat=True).first()
    if marketing and purpose_id is None:
        raise EligibilityQueryError(f"no purpose {purpose!r} in organisation {organisation.pk}")
    # 3. The contacts: blind indexes tell whether an address exists without decrypting it.
    contacts = {
        row[0]: row
        for row in Contact.objects.for_organisation(organisation)
        .filter(values_in(Contact, "id", ids))
        .annotate(minor_birth_date=_MINOR_BIRTH_DATE)
        .values_list(*_CONTACT_COLUMNS)
    }
    # 4. Objections.
    direct_marketing: set[int] = set()
    unresolved: set[int] = set()  # legitimate interest, no grounds recorded
    on_grounds: set[int] = set()  # legitimate interest, grounds recorded
    for contact_id, objection_kind, grounds_at in (
        Objection.objects.for_organisation(organisation)
        .filter(values_in(Objection, "contact", list(contacts)))
        .order_by()
        .values_list("contact_id", "kind", "grounds_recorded_at")
    ):
        if objection_kind == _DIRECT_MARKETING:
            direct_marketing.add(contact_id)
        elif grounds_at is None:
            unresolved.add(contact_id)
        else:
            on_grounds.add(contact_id)
    on_grounds -= unresolved  # one objection still waiting for grounds is enough to stop

    suppressed: set[str] = set()
    states: dict[int, ConsentState] = {}
    if marketing:
        # 5. Suppression: the digests are the contacts' own blind indexes (same key and form).
        digests = {d for row in contacts.values() for d in row[1:4] if d}
        suppressed = set(
            SuppressionEntry.objects.for_organisation(organisation)
            .filter(values_in(SuppressionEntry, "digest", digests))
            .values_list("digest", flat=True)
        )
        # 6. The derived consent state for this purpose and channel.
        assert purpose is not None and purpose_id is not None
        states = consent_latest(
            organisation=organisation,
            contact_ids=list(contacts),
            purpose=purpose,
            purpose_id=purpose_id,
            channel=channel,
        )

    decisions: dict[int, Decision] = {}
    for contact_id in ids:
        row = contacts.get(contact_id)
        if row is None:
            decisions[contact_id] = Decision(contact_id, False, None, reasons=[Reason.ERASED])
            continue
        (_, email, phone, external_id, restricted_at, rel_status, started, ended, birth) = row
        reasons: list[str] = []
        if not marketing and purpose in LEGAL_OBLIGATION_PURPOSES:
            if not (email if _USES_EMAIL[channel] else phone):
                reasons.append(Reason.NO_ADDRESS)
            decisions[contact_id] = _decision(contact_id, reasons, LegalBasis.LEGAL_OBLIGATION)
            continue
        if suspended_at is not None:
            reasons.append(Reason.ORGANISATION_SUSPENDED)
        if restricted_at is not None:
            reasons.append(Reason.RESTRICTED)
        if not (email if _USES_EMAIL[channel] else phone):
            reasons.append(Reason.NO_ADDRESS)
        live = relationship_is_live(rel_status, started, ended, today)
        if not marketing:
            if not live:
                reasons.append(Reason.NO_RELATIONSHIP)
            if contact_id in unresolved:
                reasons.append(Reason.OBJECTION)
            basis = (
                LegalBasis.LEGITIMATE_INTEREST if contact_id in on_grounds else LegalBasis.CONTRACT
            )
            decisions[contact_id] = _decision(contact_id, reasons, basis)
            continue
        if contact_id in direct_marketing:
            reasons.append(Reason.OBJECTION)
        if {email, phone, external_id} & suppressed:
            reasons.append(Reason.SUPPRESSED)
        state = states.get(contact_id)
        entry_id = guardian_id = None
        if state is None:
            reasons.append(Reason.NO_CONSENT)
        elif state.current.status == _WITHDRAWN:
            lapsed = state.current.cause == _LAPSED
            reasons.append(Reason.LAPSED if lapsed else Reason.WITHDRAWN)
        elif not live and lapse_due(state.current.recorded_at, now):
            reasons.append(Reason.LAPSED)  # due, and the daily job has not written it yet
        else:
            entry_id = state.current.id
            if birth is not None and is_minor(birth, today):
                guardian = state.guardian
                if guardian is None or guardian.status != _GIVEN:
                    reasons.append(Reason.MINOR_WITHOUT_GUARDIAN_CONSENT)
                else:
                    guardian_id = guardian.id
        decisions[contact_id] = _decision(
            contact_id, reasons, LegalBasis.CONSENT, entry_id, guardian_id
        )
    return decisions


def _decision(
    contact_id: int,
    reasons: list[str],
    basis: str,
    entry_id: int | None = None,
    guardian_id: int | None = None,
) -> Decision:
    if reasons:
        return Decision(contact_id, False, None, reasons=reasons)
    return Decision(contact_id, True, basis, entry_id, [], guardian_id)
