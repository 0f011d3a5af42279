"""Personal-data declarations for data-subject requests (ADR 5, ADR 0013).

A request is itself evidence that the controller answered (GDPR Art. 5(2), 12): when, how, what
was decided and why. So when its subject is erased, the request stays, but what identified the
person goes: the details they gave become keyed hashes (so a later request of the same person
can still be recognised as repetitive, DSR-5), free text is emptied, attachments and earlier
access or portability files are deleted with their stored objects (DSR-9).

``DataSubjectRequest.contact`` is kept (restricted) during the erasure's own update phase so the
steps, attachments and files below can still be reached through it; deleting the contact then
sets it to NULL.
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_ANSWERED = (
    "GDPR Art. 5(2) and 12(3)-(5): the controller must be able to show when a request arrived, "
    "what was decided and why, and when the subject was told; no value of the subject is kept"
)
_ACCOUNTABILITY = (
    "GDPR Art. 5(2) and 24: which staff member handled a data-subject request; only the "
    "staff member's id is kept"
)


def _contact(category: Category, erase: Erase, **kwargs: object) -> Personal:
    return Personal(category, erase=erase, subject="contact", **kwargs)  # type: ignore[arg-type]


def _staff(erase: Erase, **kwargs: object) -> Personal:
    if erase is Erase.KEEP_RESTRICTED:
        kwargs.setdefault("legal_reason", _ACCOUNTABILITY)
    return Personal(Category.TECHNICAL_LOG, erase=erase, subject="staff_user", **kwargs)  # type: ignore[arg-type]


registry.declare(
    "dsr.DataSubjectRequest",
    reach=[
        Reach("contact", "contact_id"),
        Reach("staff_user", "subject_user_id"),
        Reach("staff_user", "created_by_id"),
    ],
    retention="fraud_and_abuse_history",
    purposes=["data_subject_rights"],
    fields={
        "contact": _contact(
            Category.IDENTITY, Erase.KEEP_RESTRICTED, legal_reason=_ANSWERED, export="contact_id"
        ),
        "subject_name": _contact(Category.IDENTITY, Erase.NULL, provided_by_subject=True),
        "subject_email": _contact(
            Category.CONTACT, Erase.KEYED_HASH, hash_purpose="email", provided_by_subject=True
        ),
        "subject_email_bidx": _contact(
            Category.CONTACT, Erase.KEEP_RESTRICTED, legal_reason=_ANSWERED, export=False
        ),
        "subject_phone": _contact(
            Category.CONTACT, Erase.KEYED_HASH, hash_purpose="phone", provided_by_subject=True
        ),
        "subject_phone_bidx": _contact(
            Category.CONTACT, Erase.KEEP_RESTRICTED, legal_reason=_ANSWERED, export=False
        ),
        "subject_external_id": _contact(
            Category.IDENTITY, Erase.KEYED_HASH, hash_purpose="external_id"
        ),
        "subject_external_id_bidx": _contact(
            Category.IDENTITY, Erase.KEEP_RESTRICTED, legal_reason=_ANSWERED, export=False
        ),
        "details": _contact(Category.IDENTITY, Erase.NULL, provided_by_subject=True),
        "changes": _contact(Category.IDENTITY, Erase.NULL, provided_by_subject=True),
        "decision_reason": _contact(
            Category.CONSENT_EVIDENCE, Erase.KEEP_RESTRICTED, legal_reason=_ANSWERED
        ),
        "extension_reason": _contact(
            Category.CONSENT_EVIDENCE, Erase.KEEP_RESTRICTED, legal_reason=_ANSWERED
        ),
        "subject_user": Personal(
            Category.IDENTITY, erase=Erase.NULL, subject="staff_user", export="subject_user_id"
        ),
        "created_by": _staff(Erase.KEEP_RESTRICTED, export="created_by_user_id"),
    },
    not_personal=[
        "id",
        "organisation",
        "reference",
        "type",
        "channel",
        "state",
        "subject_kind",
        "complaint_of",
        "forwarded_from",
        "received_at",
        "clock_started_on",
        "due_on",
        "extended_at",
        "language",
        "reply_channel",
        "subject_confirmed_at",
        "verified_at",
        "verification_method",
        "decision",
        "fee_cents",
        "decided_at",
        "result",
        "executed_at",
        "closed_at",
        "subject_details_erased_at",
        "api_key",
        "last_reminded_on",
        "created_at",
        "updated_at",
    ],
)

registry.declare(
    "dsr.DsrStep",
    reach=Reach("contact", "request__contact_id"),
    retention="fraud_and_abuse_history",
    purposes=["data_subject_rights"],
    fields={
        # What a person wrote (an attestation, a reason): may name the subject.
        "note": Personal(Category.IDENTITY, erase=Erase.NULL),
    },
    not_personal=["id", "organisation", "request", "kind", "at", "actor_type", "actor_id", "data"],
)

registry.declare(
    "dsr.DsrAttachment",
    reach=[Reach("contact", "request__contact_id"), Reach("staff_user", "uploaded_by_id")],
    retention="fraud_and_abuse_history",
    purposes=["data_subject_rights"],
    fields={
        "stored_file": _contact(Category.FILE, Erase.DELETE_ROW, export="document"),
        "original_name": _contact(Category.FILE, Erase.DELETE_ROW),
        "kind": _contact(Category.FILE, Erase.DELETE_ROW),
        "uploaded_by": _staff(Erase.NULL, export="uploaded_by_user_id"),
    },
    not_personal=[
        "id",
        "organisation",
        "request",
        "content_type",
        "size",
        "sha256",
        "uploaded_at",
    ],
)

registry.declare(
    "dsr.DsrArtifact",
    reach=Reach("contact", "contact_id"),
    retention="fraud_and_abuse_history",
    purposes=["data_subject_rights"],
    fields={
        # Earlier access and portability files of the subject: erased with them (DSR-9).
        "contact": Personal(Category.FILE, erase=Erase.DELETE_ROW, export="contact_id"),
        "stored_file": Personal(Category.FILE, erase=Erase.DELETE_ROW, export="document"),
    },
    not_personal=[
        "id",
        "organisation",
        "request",
        "kind",
        "size",
        "sha256",
        "token_hash",
        "expires_at",
        "downloads",
        "created_at",
        "removed_at",
    ],
)

registry.declare(
    "dsr.PortabilityPush",
    reach=Reach("contact", "request__contact_id"),
    retention="fraud_and_abuse_history",
    purposes=["data_subject_rights"],
    fields={
        # What the other controller answered may echo the subject's data.
        "response_excerpt": Personal(Category.TECHNICAL_LOG, erase=Erase.NULL),
    },
    not_personal=[
        "id",
        "organisation",
        "request",
        "url",
        "status_code",
        "bytes_sent",
        "sha256",
        "error",
        "pushed_at",
    ],
)

registry.not_personal_model(
    "dsr.VerificationCode",
    reason="the hash of a random one-time code and the channel it went by; no address is kept",
)
registry.not_personal_model(
    "dsr.DsrNotice",
    reason="which notice went by which channel and when; neither the address nor the text",
)
registry.not_personal_model(
    "dsr.RecipientNotification",
    reason="which processor or client was told of a change, with counts; no value of the subject",
)
