"""Personal-data declarations for consent (ADR 5, ADR 9).

The ledger and objections are the contact's data and go when the contact is erased. Who
recorded an entry or grounds is a staff member's id, kept for accountability. The suppression
list holds keyed hashes only, tied to no contact id, and is kept on purpose: it is how an
objection to direct marketing survives erasure (CON-6, DSR-9 "only a keyed-hash suppression entry
may remain").
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_ACCOUNTABILITY = (
    "GDPR Art. 5(2) and 7(1): the controller must show who recorded a consent or the grounds to "
    "continue after an objection; only the staff member's id is kept, and the row goes when the "
    "contact is erased"
)


def _contact(category: Category, **kwargs: object) -> Personal:
    return Personal(category, erase=Erase.DELETE_ROW, subject="contact", **kwargs)  # type: ignore[arg-type]


def _staff(export: str) -> Personal:
    return Personal(
        Category.TECHNICAL_LOG,
        erase=Erase.KEEP_RESTRICTED,
        legal_reason=_ACCOUNTABILITY,
        export=export,
        subject="staff_user",
    )


registry.declare(
    "consent.ConsentEntry",
    reach=[Reach("contact", "contact_id"), Reach("staff_user", "recorded_by_id")],
    retention="contact_consent",
    purposes=["marketing", "surveys", "review_requests", "appointment_reminders"],
    fields={
        "contact": _contact(Category.CONSENT_EVIDENCE, export="contact_id"),
        # The subject's own choices (for what, on which channel, given or withdrawn, when) are
        # data they provided: portability carries them (DSR-7).
        "purpose": _contact(
            Category.CONSENT_EVIDENCE, export="purpose_id", provided_by_subject=True
        ),
        "channel": _contact(Category.CONSENT_EVIDENCE, provided_by_subject=True),
        "status": _contact(Category.CONSENT_EVIDENCE, provided_by_subject=True),
        "wording": _contact(Category.CONSENT_EVIDENCE, export="wording_id"),
        "source": _contact(Category.CONSENT_EVIDENCE),
        "cause": _contact(Category.CONSENT_EVIDENCE),
        # The guardian who consented for a minor (CNT-6). Erasing the guardian sets it to null
        # (the entry is the minor's evidence, not the guardian's record).
        "guardian": _contact(Category.IDENTITY, export="guardian_id"),
        "recorded_at": _contact(Category.CONSENT_EVIDENCE, provided_by_subject=True),
        "ip_address": _contact(Category.TECHNICAL_LOG),
        "user_agent": _contact(Category.TECHNICAL_LOG),
        "note": _contact(Category.CONSENT_EVIDENCE),
        "recorded_by": _staff("recorded_by_user_id"),
    },
    not_personal=["id", "organisation", "api_key"],
)

registry.declare(
    "consent.Objection",
    reach=[Reach("contact", "contact_id"), Reach("staff_user", "grounds_recorded_by_id")],
    retention="contact_consent",
    purposes=["marketing", "appointment_reminders", "accountability"],
    fields={
        "contact": _contact(Category.CONSENT_EVIDENCE, export="contact_id"),
        "kind": _contact(Category.CONSENT_EVIDENCE, provided_by_subject=True),
        "received_at": _contact(Category.CONSENT_EVIDENCE),
        "source": _contact(Category.CONSENT_EVIDENCE),
        "note": _contact(Category.CONSENT_EVIDENCE),
        "grounds_reason": _contact(Category.CONSENT_EVIDENCE),
        "grounds_recorded_at": _contact(Category.CONSENT_EVIDENCE),
        "created_at": _contact(Category.CONSENT_EVIDENCE),
        "grounds_recorded_by": _staff("grounds_recorded_by_user_id"),
    },
    not_personal=["id", "organisation"],
)

registry.opaque_model(
    "consent.SuppressionEntry",
    category=Category.CONTACT,
    retention="marketing_suppression",
    reason=(
        "keyed hashes (HMAC-SHA256 under the blind-index key) of an e-mail address, phone number "
        "or external id of someone who objected to direct marketing, with no contact id: kept "
        "for as long as the organisation exists, so that the objection stays effective after "
        "erasure and a re-imported contact is not messaged (CON-6, Art. 21(3) GDPR; DSR-9 allows "
        "exactly this to remain). It cannot be turned back into the address, and only matches "
        "when the same address is presented again"
    ),
)

registry.not_personal_model(
    "consent.Purpose", reason="the organisation's list of consent purposes (names, no people)"
)
registry.not_personal_model(
    "consent.Wording", reason="the consent texts an organisation shows (no people)"
)

# Public consent form (double opt-in): what a person typed, before they confirm it with the code
# sent to them. Not a contact yet and tied to no contact id, so erasure and access cannot reach it
# row by row; it is bounded by time instead: the row is deleted when the code is confirmed (the
# data then lives on the contact and its consent entries) and, unconfirmed, within an hour of its
# 30-minute expiry by the hourly consent.tasks.pending_signups_purge.
registry.opaque_model(
    "consent.PendingSignup",
    category=Category.CONTACT,
    retention="visitor_and_log_data",
    reason=(
        "a sign-up on the public consent form awaiting its confirmation code: name, e-mail, "
        "phone, IP address and user agent (encrypted), the wordings ticked and a keyed hash of "
        "the code; deleted on confirmation, or by the hourly purge once it expires after 30 "
        "minutes (consent.signups.pending_signups_purge)"
    ),
)
