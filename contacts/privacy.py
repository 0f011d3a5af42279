"""Personal-data declarations for contacts (ADR 5): the clinic's data subjects and the history of
every change to their record (DSR-8)."""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry


def _given(category: Category, **kwargs: object) -> Personal:
    return Personal(category, erase=Erase.DELETE_ROW, provided_by_subject=True, **kwargs)  # type: ignore[arg-type]


def _derived(category: Category, **kwargs: object) -> Personal:
    return Personal(category, erase=Erase.DELETE_ROW, **kwargs)  # type: ignore[arg-type]


registry.declare(
    "contacts.Contact",
    reach=Reach("contact", "id"),
    retention="contact_consent",
    purposes=["care_administration", "appointment_reminders", "marketing"],
    recipients=["infobip"],
    fields={
        "first_name": _given(Category.IDENTITY),
        "last_name": _given(Category.IDENTITY),
        "birth_date": _given(Category.IDENTITY),
        "gender": _given(Category.IDENTITY),
        "external_id": _derived(Category.IDENTITY),
        "external_id_bidx": _derived(Category.IDENTITY, export=False),
        "email": _given(Category.CONTACT),
        "email_bidx": _derived(Category.CONTACT, export=False),
        "phone": _given(Category.CONTACT),
        "phone_bidx": _derived(Category.CONTACT, export=False),
        "preferred_language": _given(Category.CONTACT),
        "address": _given(Category.CONTACT),
        "source_kind": _derived(Category.CONSENT_EVIDENCE),
        "source": _derived(Category.CONSENT_EVIDENCE),
        "relationship_status": _derived(Category.HEALTH_ADJACENT),
        "relationship_started_at": _derived(Category.HEALTH_ADJACENT),
        "relationship_ended_at": _derived(Category.HEALTH_ADJACENT),
        "guardian": _derived(Category.IDENTITY, export="guardian_id"),
        "is_minor": _derived(Category.IDENTITY),
        "restricted_at": _derived(Category.CONSENT_EVIDENCE),
        "restriction_reason": _derived(Category.CONSENT_EVIDENCE),
        "restriction_lifted_at": _derived(Category.CONSENT_EVIDENCE),
        "restriction_lift_informed_at": _derived(Category.CONSENT_EVIDENCE),
        "restriction_lift_informed_how": _derived(Category.CONSENT_EVIDENCE),
        "created_at": _derived(Category.IDENTITY),
        "updated_at": _derived(Category.IDENTITY),
    },
    not_personal=["id", "organisation"],
)

_ACCOUNTABILITY = (
    "GDPR Art. 5(2): who changed a patient's record is the evidence of how it was handled; "
    "only the staff member's id is kept, and the row goes when the contact is erased"
)

registry.declare(
    "contacts.ContactChange",
    reach=[
        Reach("contact", "contact_id"),
        Reach("staff_user", "actor_id", where={"actor_type": "user"}),
    ],
    retention="contact_consent",
    purposes=["care_administration", "accountability"],
    fields={
        "contact": _derived(Category.IDENTITY, export="contact_id", subject="contact"),
        "kind": _derived(Category.IDENTITY, subject="contact"),
        "changes": _derived(Category.IDENTITY, subject="contact"),
        "statement": _given(Category.IDENTITY, subject="contact"),
        "reason": _derived(Category.IDENTITY, subject="contact"),
        "created_at": _derived(Category.IDENTITY, subject="contact"),
        "actor_id": Personal(
            Category.TECHNICAL_LOG,
            erase=Erase.KEEP_RESTRICTED,
            legal_reason=_ACCOUNTABILITY,
            export="actor_user_id",
            subject="staff_user",
        ),
    },
    not_personal=["id", "organisation", "actor_type", "request_id"],
)

# A CSV import (CNT-2). The uploaded file and the rejected rows hold many patients' data in a
# file that no column ties to one contact id, so erasure and access cannot reach it row by row;
# it is bounded by time instead: the upload is deleted as soon as the import ends, the rejected
# rows (kept so the clinic can fix and re-upload them) after CONTACT_IMPORT_KEEP_DAYS (default
# 7) by contacts.imports.contact_imports_purge. What stays is counts, state and the staff id.
registry.opaque_model(
    "contacts.ImportJob",
    category=Category.IDENTITY,
    retention="contact_consent",
    reason=(
        "an uploaded contact list and its rejected rows, stored as files in the default storage "
        "(never a public URL) under the organisation's folder; the upload is deleted when the "
        "import ends and the rejected rows after CONTACT_IMPORT_KEEP_DAYS days "
        "(contact_imports_purge); the job row then holds only counts, state, column names and "
        "the id of the staff member who ran it"
    ),
)

# A tag on a patient can reveal a health fact ("diabetes-check"), so the link is the contact's
# personal data: deleted with the contact, exported with it (under the tag's name, which the row
# repeats), kept as long as the contact. Tags are put on by the clinic, not provided by the
# person, so portability (DSR-7) leaves them out.
registry.declare(
    "contacts.ContactTag",
    reach=Reach("contact", "contact_id"),
    retention="contact_consent",
    purposes=["care_administration", "marketing"],
    fields={
        "contact": _derived(Category.HEALTH_ADJACENT, export="contact_id"),
        "tag": _derived(Category.HEALTH_ADJACENT, export="tag_id"),
        "name": _derived(Category.HEALTH_ADJACENT, export="tag"),
        "created_at": _derived(Category.HEALTH_ADJACENT, export="tagged_at"),
    },
    not_personal=["id", "organisation"],
)

registry.not_personal_model(
    "contacts.Tag",
    reason=(
        "the clinic's own vocabulary of labels (name, case-folded key, when it was created); "
        "which contact carries a tag is in contacts.ContactTag"
    ),
)
