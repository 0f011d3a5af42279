"""Personal-data declarations for contact files (CNT-5, ADR 5).

A file belongs to its contact: erasure deletes the row and, after the commit, the stored object;
access reports and exports list it as a document (its stored name, fetched through the storage).
Who uploaded it is a staff member's id, kept for accountability like ``ContactChange.actor_id``.
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_ACCOUNTABILITY = (
    "GDPR Art. 5(2): who attached a document to a patient's record is evidence of how it was "
    "handled; only the staff member's id is kept, and the row goes when the contact is erased"
)


def _file(**kwargs: object) -> Personal:
    return Personal(Category.FILE, erase=Erase.DELETE_ROW, subject="contact", **kwargs)  # type: ignore[arg-type]


registry.declare(
    "files.ContactFile",
    reach=[
        Reach("contact", "contact_id"),
        Reach("staff_user", "uploaded_by_id"),
    ],
    retention="contact_consent",
    purposes=["care_administration"],
    fields={
        "contact": _file(export="contact_id"),
        "kind": _file(),
        "original_name": _file(provided_by_subject=True),
        "stored_file": _file(export="document", provided_by_subject=True),
        "content_type": _file(),
        "size": _file(),
        "sha256": _file(),
        "uploaded_at": _file(),
        "uploaded_by": Personal(
            Category.TECHNICAL_LOG,
            erase=Erase.KEEP_RESTRICTED,
            legal_reason=_ACCOUNTABILITY,
            export="uploaded_by_user_id",
            subject="staff_user",
        ),
    },
    not_personal=["id", "organisation"],
)
