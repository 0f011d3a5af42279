"""``registry.describe()``: the raw material of records of processing (SEC-6) and of the
"categories, purposes, recipients, retention" part of an access response (DSR-6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carely.privacy.registry import Registry

# Names of the retention categories used in declarations, with the RET-1 rule they stand for.
# The retention app turns these into rules; describe() shows the wording to people.
RETENTION_CATEGORIES = {
    "contact_consent": "until consent is withdrawn, then 90 days unused (evidence); delete",
    "contact_legitimate_interest": "90 days from entry or from unsubscribing; delete",
    "consent_no_relationship": "2 years from giving; lapse, then delete",
    "consent_after_relationship": "2 years after the relationship ends; delete",
    "visitor_and_log_data": "12 months; delete",
    "customer_contact_persons": "3 years after the contract ends; delete",
    "billing": "until paid, at most the 1-5 year limitation period; delete",
    "invoices": "10 years after the end of the invoice year; delete",
    "fraud_and_abuse_history": "5 years after the relationship ends; delete",
    "idempotency_24_hours": "24 hours; delete (technical replay store)",
    "marketing_suppression": (
        "keyed hashes only, kept after erasure so an objector is never messaged for marketing "
        "again (CON-6); deleted with the organisation's data when it leaves"
    ),
}


def describe(registry: Registry) -> list[dict[str, Any]]:
    """One entry per declared model: subjects, purposes, recipients and each personal field."""
    out: list[dict[str, Any]] = []
    for entry in sorted(registry.entries(), key=lambda e: e.label):
        out.append(
            {
                "model": entry.label,
                "subjects": sorted({r.kind for r in entry.reaches}),
                "purposes": list(entry.purposes),
                "recipients": list(entry.recipients),
                "fields": [
                    {
                        "field": f.name,
                        "category": str(f.personal.category),
                        "subject": f.personal.subject or entry.reaches[0].kind,
                        "erasure": str(f.personal.erase),
                        "legal_reason": f.personal.legal_reason,
                        "export_as": f.export_name,
                        "provided_by_subject": f.personal.provided_by_subject,
                        "retention": f.retention,
                        "retention_rule": RETENTION_CATEGORIES.get(f.retention, ""),
                    }
                    for f in entry.fields
                ],
            }
        )
    for label, opaque in sorted(registry.opaque_models().items()):
        out.append(
            {
                "model": label,
                "subjects": [],
                "purposes": [],
                "recipients": [],
                "opaque": True,
                "category": str(opaque.category),
                "retention": opaque.retention,
                "retention_rule": RETENTION_CATEGORIES.get(opaque.retention, ""),
                "reason": opaque.reason,
                "fields": [],
            }
        )
    return out
