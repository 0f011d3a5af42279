from carely.privacy.registry import Category, Erase, Personal, Reach, registry

registry.declare(
    "privacy_probe.ProbePatient",
    reach=Reach("contact", "id"),
    retention="contact_consent",
    purposes=["care_administration", "appointment_reminders"],
    recipients=["infobip"],
    fields={
        "first_name": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "last_name": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "email": Personal(
            Category.CONTACT, erase=Erase.DELETE_ROW, export="e-mail", provided_by_subject=True
        ),
        "email_bidx": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, export=False),
        "phone": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "phone_bidx": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, export=False),
        "birth_date": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "notes": Personal(Category.HEALTH_ADJACENT, erase=Erase.DELETE_ROW),
        "photo": Personal(Category.FILE, erase=Erase.DELETE_ROW, provided_by_subject=True),
    },
    not_personal=["id", "organisation", "created_at"],
)

registry.declare(
    "privacy_probe.ProbeNote",
    reach=Reach("contact", "patient_id"),
    retention="contact_consent",
    purposes=["care_administration"],
    fields={
        "patient": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, export="patient_id"),
        "body": Personal(Category.MESSAGE_CONTENT, erase=Erase.DELETE_ROW),
    },
    not_personal=["id", "organisation", "created_at"],
)

registry.declare(
    "privacy_probe.ProbeInvoice",
    reach=Reach("contact", "patient_ref"),
    retention="invoices",
    purposes=["billing"],
    restricted_flag="restricted_at",
    fields={
        "patient_ref": Personal(
            Category.BILLING,
            erase=Erase.KEEP_RESTRICTED,
            legal_reason="invoices are kept 10 years (ZDDV-1, art. 141)",
        ),
        "amount_cents": Personal(
            Category.BILLING,
            erase=Erase.KEEP_RESTRICTED,
            legal_reason="invoices are kept 10 years (ZDDV-1, art. 141)",
        ),
        "payer_email": Personal(Category.CONTACT, erase=Erase.KEYED_HASH, hash_purpose="email"),
        "remark": Personal(Category.BILLING, erase=Erase.NULL),
    },
    not_personal=["id", "organisation", "number", "restricted_at"],
)
