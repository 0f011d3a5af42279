"""Personal-data declarations for campaigns (ADR 5).

A campaign, its audience filter, templates and links describe groups ("women 30-45 who chose
SMS"), never a person. Who wrote, submitted and approved a campaign are staff members' ids, kept
for accountability: the four-eyes approval is only evidence while it can say whose eyes. The
messages a campaign queued are the messaging app's rows, declared there.
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_ACCOUNTABILITY = (
    "GDPR Art. 5(2) and 24: who prepared and who approved a marketing send to patients is part "
    "of showing the clinic controlled it; only the staff member's id is kept"
)


def _staff(export: str) -> Personal:
    return Personal(
        Category.TECHNICAL_LOG,
        erase=Erase.KEEP_RESTRICTED,
        legal_reason=_ACCOUNTABILITY,
        export=export,
        subject="staff_user",
    )


registry.declare(
    "campaigns.Campaign",
    reach=[
        Reach("staff_user", "created_by_id"),
        Reach("staff_user", "submitted_by_id"),
        Reach("staff_user", "approved_by_id"),
    ],
    retention="customer_contact_persons",
    purposes=["accountability"],
    fields={
        "created_by": _staff("created_by_user_id"),
        "submitted_by": _staff("submitted_by_user_id"),
        "approved_by": _staff("approved_by_user_id"),
    },
    not_personal=[
        "id",
        "organisation",
        "name",
        "purpose",
        "channels",
        "fallback_language",
        "audience",
        "audience_filters",
        "schedule",
        "send_at",
        "send_until",
        "state",
        "ai_drafted",
        "created_at",
        "updated_at",
        "submitted_at",
        "approved_at",
        "started_at",
        "finished_at",
        "materialised_through",
        "materialised_at",
        "audience_total",
        "targeted",
        "queued",
        "exclusions",
        "queued_by_channel",
    ],
)
registry.declare(
    "campaigns.Audience",
    reach=Reach("staff_user", "created_by_id"),
    retention="customer_contact_persons",
    purposes=["accountability"],
    fields={"created_by": _staff("created_by_user_id")},
    not_personal=[
        "id",
        "organisation",
        "name",
        "description",
        "filters",
        "created_at",
        "updated_at",
    ],
)
registry.declare(
    "campaigns.CampaignStep",
    reach=Reach("staff_user", "actor_id"),
    retention="customer_contact_persons",
    purposes=["accountability"],
    fields={"actor": _staff("actor_user_id")},
    not_personal=[
        "id",
        "organisation",
        "campaign",
        "kind",
        "from_state",
        "to_state",
        # A staff member's reason for a rejection or a pause, about the campaign, not a patient.
        "note",
        "at",
    ],
)
registry.not_personal_model(
    "campaigns.CampaignTemplate",
    reason="which message template a campaign uses per channel and language",
)
registry.not_personal_model(
    "campaigns.CampaignLink",
    reason="the links a campaign's text contains (the clinic's own pages); clicks are recorded "
    "on the messages, not here",
)
