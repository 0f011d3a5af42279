"""Personal-data declarations for the audit app (ADR 5).

Audit events and access-log entries hold ids and keyed hashes, no names or addresses; the ids
still point at people, so they are declared. Erasure keeps them, restricted: the trail is the
evidence of how the data was handled (GDPR Art. 5(2), 30 and 32), and deleting a row of the audit
chain would break it for every later entry. They go with the organisation's exit purge.
"""

from carely.privacy.registry import Category, Erase, Personal, Reach, registry

_ACCOUNTABILITY = (
    "GDPR Art. 5(2) and 32: the audit trail is the evidence of how personal data was handled; "
    "it holds ids and keyed hashes only and is removed with the organisation's data at exit"
)
_LOGS = "visitor_and_log_data"


def _kept(subject: str, **kwargs: object) -> Personal:
    return Personal(
        Category.TECHNICAL_LOG,
        erase=Erase.KEEP_RESTRICTED,
        legal_reason=_ACCOUNTABILITY,
        subject=subject,
        **kwargs,  # type: ignore[arg-type]
    )


registry.declare(
    "audit.AuditEvent",
    reach=[
        Reach("staff_user", "actor_id", organisation=None, where={"actor_type": "user"}),
        Reach("contact", "object_id", where={"object_type": "contact"}),
    ],
    retention=_LOGS,
    purposes=["security", "accountability"],
    fields={
        "actor_id": _kept("staff_user", export="actor_user_id"),
        "action": _kept("staff_user"),
        "occurred_at": _kept("staff_user"),
        "details": _kept("staff_user"),
        "object_id": _kept("contact", export="contact_id"),
    },
    not_personal=[
        "id",
        "chain_key",
        "seq",
        "organisation",
        "actor_type",
        "object_type",
        "request_id",
        "prev_hash",
        "hash",
    ],
)

registry.declare(
    "audit.AccessLogEntry",
    reach=[
        Reach("staff_user", "actor_id", where={"actor_type": "user"}),
        Reach("contact", "subject_id", where={"subject_type": "contact"}),
    ],
    retention=_LOGS,
    purposes=["accountability"],
    fields={
        "actor_id": _kept("staff_user", export="accessed_by_user_id"),
        "subject_id": _kept("contact", export="contact_id"),
        "occurred_at": _kept("contact", export="accessed_at"),
        "action": _kept("contact"),
        "what": _kept("contact", export="data_accessed"),
        "purpose": _kept("contact"),
    },
    not_personal=["id", "organisation", "actor_type", "subject_type", "request_id"],
)

registry.not_personal_model(
    "audit.AuditChainHead", reason="the sequence number and hash of each chain's last entry"
)
