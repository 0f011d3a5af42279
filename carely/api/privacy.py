"""Personal-data declarations for the API app (ADR 5)."""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

registry.declare(
    "api.ApiKey",
    reach=Reach("staff_user", "created_by_id"),
    retention="customer_contact_persons",
    purposes=["security"],
    fields={
        # The key outlives the person who made it; erasure forgets who that was.
        "created_by": Personal(Category.IDENTITY, erase=Erase.NULL, export="created_by_id"),
    },
    not_personal=[
        "id",
        "organisation",
        "name",
        "prefix",
        "digest",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
        "rate_limit_per_minute",
    ],
)

registry.opaque_model(
    "api.IdempotencyRecord",
    category=Category.TECHNICAL_LOG,
    retention="idempotency_24_hours",
    reason=(
        "the first answer to a POST, replayed for repeats; the stored response body may hold the "
        "created record's fields, and no column ties it to a subject. Rows live 24 hours "
        "(IdempotencyRecord.LIFETIME) and the hourly purge task removes them"
    ),
)
