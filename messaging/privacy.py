"""Personal-data declarations for messaging (ADR 5).

A message's contents, address and unsubscribe headers are the contact's data. Erasure empties
them and cuts the link to the contact but keeps the row itself (channel, kind, status, times,
part counts): that is what usage metering counts (TEN-5), and nothing in it points at a person
any more. The status timeline holds codes, ids and times only (no content, name or address), and
after erasure it hangs on an anonymous row, so it is declared not personal. Who enqueued a
message is a staff member's id, kept for accountability.
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_ACCOUNTABILITY = (
    "GDPR Art. 5(2): who had a message sent to a patient is part of showing how their data was "
    "used; only the staff member's id is kept"
)


def _contact(category: Category, **kwargs: object) -> Personal:
    return Personal(category, erase=Erase.NULL, subject="contact", **kwargs)  # type: ignore[arg-type]


registry.declare(
    "messaging.Message",
    reach=[Reach("contact", "contact_id"), Reach("staff_user", "created_by_id")],
    retention="contact_consent",
    purposes=["appointment_reminders", "marketing", "surveys", "review_requests"],
    recipients=["infobip", "amazon_ses"],
    fields={
        "contact": _contact(Category.IDENTITY, export="contact_id"),
        "subject": _contact(Category.MESSAGE_CONTENT),
        "body": _contact(Category.MESSAGE_CONTENT),
        "html_body": _contact(Category.MESSAGE_CONTENT),
        "extras": _contact(Category.MESSAGE_CONTENT, export=False),
        "to_address": _contact(Category.CONTACT),
        "consent_entry_id": _contact(Category.CONSENT_EVIDENCE),
        "created_by": Personal(
            Category.TECHNICAL_LOG,
            erase=Erase.KEEP_RESTRICTED,
            legal_reason=_ACCOUNTABILITY,
            export="created_by_user_id",
            subject="staff_user",
        ),
    },
    not_personal=[
        "id",
        "organisation",
        "channel",
        "kind",
        "purpose",
        "template",
        "template_version",
        "legal_basis",
        "refusal_reasons",
        "our_id",
        "provider",
        "provider_message_id",
        "dedupe_key",
        "status",
        "due_at",
        "respect_quiet_hours",
        "lease_owner",
        "lease_until",
        "handed_at",
        "attempts",
        "last_error",
        "error_permanent",
        "parts_estimated",
        "parts_reported",
        "campaign_id",
        "created_at",
        "sent_at",
        "final_at",
        "api_key",
    ],
)

registry.declare(
    "messaging.WhatsAppSession",
    reach=Reach("contact", "contact_id"),
    retention="contact_consent",
    purposes=["appointment_reminders"],
    fields={
        "contact": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, export="contact_id"),
        "last_inbound_at": Personal(Category.CONTACT, erase=Erase.DELETE_ROW),
    },
    not_personal=["id", "organisation"],
)

registry.not_personal_model(
    "messaging.MessageEvent",
    reason=(
        "a message's status timeline: event names, times, provider status and error ids, "
        "refusal reason codes; never content, names or addresses (the writers refuse them). It "
        "hangs on a Message whose contact link and contents erasure empties"
    ),
)
# A clinic's message texts with {{ placeholders }} (values are filled in per message); only the
# author's staff id is personal.
registry.declare(
    "messaging.MessageTemplate",
    reach=Reach("staff_user", "created_by_id"),
    retention="customer_contact_persons",
    purposes=["accountability"],
    fields={
        "created_by": Personal(
            Category.TECHNICAL_LOG,
            erase=Erase.KEEP_RESTRICTED,
            legal_reason=_ACCOUNTABILITY,
            export="created_by_user_id",
        ),
    },
    not_personal=[
        "id",
        "organisation",
        "name",
        "kind",
        "channel",
        "language",
        "version",
        "subject",
        "body",
        "html_body",
        "variables",
        "whatsapp_template_name",
        "created_at",
        "retired_at",
    ],
)
registry.not_personal_model(
    "messaging.ProviderAccount",
    reason="an organisation's provider credentials, sender ids, webhook token and quiet hours",
)

# --- the webhook side (messaging/receipts.py) ----------------------------------------------------
# A raw webhook body: a batch of delivery reports or replies holds many people's numbers and
# texts in one encrypted blob that no column ties to a contact, so it is bounded by time instead:
# processed within seconds, deleted MESSAGING_WEBHOOK_RECEIPT_KEEP_DAYS (default 7) later by
# webhook_receipts_sweep.
registry.opaque_model(
    "messaging.WebhookReceipt",
    category=Category.MESSAGE_CONTENT,
    retention="visitor_and_log_data",
    reason=(
        "the raw body of a provider webhook (delivery reports, inbound replies, SES "
        "notifications), encrypted, kept only until processed plus "
        "MESSAGING_WEBHOOK_RECEIPT_KEEP_DAYS days, then deleted by webhook_receipts_sweep"
    ),
)
# A reply a person sent (STOP or anything else): consent evidence when it withdrew (CON-1), the
# person's own words otherwise. Erasure deletes the row; the ledger entries it wrote are the
# consent app's and go with the contact. Unknown senders have no contact: their rows are found by
# no subject and expire with the log data.
registry.declare(
    "messaging.InboundMessage",
    reach=Reach("contact", "contact_id"),
    retention="contact_consent",
    purposes=["marketing", "accountability"],
    fields={
        "contact": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, export="contact_id"),
        "sender": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "text": Personal(
            Category.MESSAGE_CONTENT, erase=Erase.DELETE_ROW, provided_by_subject=True
        ),
        "received_at": Personal(Category.CONSENT_EVIDENCE, erase=Erase.DELETE_ROW),
        "consent_entry_ids": Personal(Category.CONSENT_EVIDENCE, erase=Erase.DELETE_ROW),
    },
    not_personal=[
        "id",
        "organisation",
        "channel",
        "provider_message_id",
        "keyword",
        "recorded_at",
        "outcome",
        "cancelled_messages",
    ],
)
registry.not_personal_model(
    "messaging.UndeliverableAddress",
    reason=(
        "keyed hashes (the contacts' blind-index digests) of addresses a provider reported as "
        "permanently undeliverable, with counts and times; no readable address and no link to "
        "a contact, like the suppression list"
    ),
)
registry.not_personal_model(
    "messaging.StopKeywordSet",
    reason="the extra STOP keywords an organisation configured",
)
registry.not_personal_model(
    "messaging.MessagingOptions",
    reason="an organisation's messaging switches (free text through the API)",
)
