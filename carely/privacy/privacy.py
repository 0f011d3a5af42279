"""Declarations for Django's and third-party apps' models (ADR 5).

Models we do not own are classified here rather than left on a silent allow-list, so the
completeness test covers them like our own.
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_LOGS = "visitor_and_log_data"
_ACCOUNT = "customer_contact_persons"

for _label, _reason in [
    ("contenttypes.ContentType", "the names of installed models"),
    ("auth.Permission", "names of permissions; unused, roles live in Membership"),
    ("auth.Group", "named groups of permissions; unused, roles live in Membership"),
]:
    registry.not_personal_model(_label, reason=_reason)

registry.opaque_model(
    "sessions.Session",
    category=Category.TECHNICAL_LOG,
    retention=_LOGS,
    reason=(
        "encoded session data under a random key; no column holds the user id. Sessions end "
        "after SESSION_COOKIE_AGE (12 h) and clearsessions removes them; deleting an account "
        "invalidates its sessions"
    ),
)

for _label in ("axes.AccessAttempt", "axes.AccessFailureLog", "axes.AccessLog"):
    registry.opaque_model(
        _label,
        category=Category.TECHNICAL_LOG,
        retention="fraud_and_abuse_history",
        reason=(
            "login attempts keyed by the typed user name and the client address, not by an "
            "account id (attempts on unknown names are logged too); kept for lockout and abuse "
            "evidence and purged by the retention job"
        ),
    )
registry.opaque_model(
    "axes.AccessAttemptExpiration",
    category=Category.TECHNICAL_LOG,
    retention="fraud_and_abuse_history",
    reason="the expiry time of one login-attempt row; goes with it",
)

registry.declare(
    "admin.LogEntry",
    reach=Reach("staff_user", "user_id", organisation=None),
    retention=_LOGS,
    purposes=["security"],
    fields={
        "user": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW, export="user_id"),
        "action_time": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
        "action_flag": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
        # Our models' __str__ never shows a name or address ("user #12"), by design.
        "object_repr": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
        "change_message": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
    },
    not_personal=["id", "content_type", "object_id"],
)

registry.declare(
    "account.EmailAddress",
    reach=Reach("staff_user", "user_id", organisation=None),
    retention=_ACCOUNT,
    purposes=["platform_accounts"],
    fields={
        "user": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, export="user_id"),
        "email": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, provided_by_subject=True),
        "verified": Personal(Category.CONTACT, erase=Erase.DELETE_ROW),
        "primary": Personal(Category.CONTACT, erase=Erase.DELETE_ROW),
    },
    not_personal=["id"],
)

registry.declare(
    "account.EmailConfirmation",
    reach=Reach("staff_user", "email_address__user_id", organisation=None),
    retention=_ACCOUNT,
    purposes=["platform_accounts"],
    fields={
        "email_address": Personal(
            Category.CONTACT, erase=Erase.DELETE_ROW, export="email_address_id"
        ),
        "created": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
        "sent": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
        "key": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW, export=False),
    },
    not_personal=["id"],
)

registry.declare(
    "mfa.Authenticator",
    reach=Reach("staff_user", "user_id", organisation=None),
    retention=_ACCOUNT,
    purposes=["security"],
    fields={
        "user": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, export="user_id"),
        "type": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
        # The TOTP secret and recovery codes: never exported.
        "data": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW, export=False),
        "created_at": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
        "last_used_at": Personal(Category.TECHNICAL_LOG, erase=Erase.DELETE_ROW),
    },
    not_personal=["id"],
)


registry.declare(
    "privacy.ProcessingPurpose",
    reach=Reach("staff_user", "updated_by_id"),
    retention=_ACCOUNT,
    purposes=["accountability"],
    fields={
        # Who last edited the record; the record itself stays, forgetting the editor.
        "updated_by": Personal(Category.IDENTITY, erase=Erase.NULL, export="updated_by_id"),
    },
    not_personal=[
        "id",
        "organisation",
        "slug",
        "name",
        "description",
        "legal_basis",
        "legal_basis_note",
        "updated_at",
    ],
)
registry.not_personal_model(
    "privacy.Subprocessor", reason="companies the platform engages, their service and location"
)
