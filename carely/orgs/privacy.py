"""Personal-data declarations for the orgs app (ADR 5).

Staff accounts belong to the platform as controller, so the account reaches its subject without
an organisation; memberships are also reachable per organisation.
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_ACCOUNT = "customer_contact_persons"

registry.declare(
    "orgs.User",
    reach=Reach("staff_user", "id", organisation=None),
    retention=_ACCOUNT,
    purposes=["platform_accounts", "security"],
    fields={
        "email": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "full_name": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "password": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, export=False),
        "last_login": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
        "date_joined": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
        "preferred_language": Personal(
            Category.IDENTITY, erase=Erase.DELETE_ROW, provided_by_subject=True
        ),
        "platform_role": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
        "is_active": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
        "is_staff": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
        "is_superuser": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
    },
    # Django's group/permission tables are unused (roles live in Membership); their link rows go
    # with the account.
    not_personal=["id", "groups", "user_permissions"],
)

registry.declare(
    "orgs.Membership",
    reach=Reach("staff_user", "user_id"),
    retention=_ACCOUNT,
    purposes=["platform_accounts"],
    fields={
        "user": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, export="user_id"),
        "role": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
        "created_at": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
    },
    not_personal=["id", "organisation"],
)

registry.not_personal_model(
    "orgs.Organisation",
    reason="a clinic, a legal person: its name, slug and settings describe no individual",
)
registry.not_personal_model(
    "orgs.Contract",
    reason="the order form's reference and dates; no contact person is stored on it (yet)",
)
