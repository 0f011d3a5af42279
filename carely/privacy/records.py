"""Records of processing activities (GDPR Art. 30, SEC-6), built from the registry.

One activity per purpose: its legal basis and description come from ProcessingPurpose (editable by
the DPO); data categories, subjects, retention and recipients come from the registry declarations
that name the purpose, so the record cannot drift from what the code actually stores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from carely.audit.services import audit_record
from carely.orgs.models import Organisation, User
from carely.privacy.describe import RETENTION_CATEGORIES
from carely.privacy.models import LegalBasis, ProcessingPurpose, Subprocessor
from carely.privacy.registry import ModelEntry, registry

# Purposes every clinic starts with; the DPO reviews and edits them.
CLINIC_PURPOSES: dict[str, tuple[str, str, str]] = {
    "appointment_reminders": (
        "Appointment reminders and care administration",
        LegalBasis.CONTRACT,
        "Reminding patients of appointments they booked and keeping their contact details.",
    ),
    "marketing": (
        "Marketing messages",
        LegalBasis.CONSENT,
        "Campaigns about the clinic's services to patients who agreed to receive them.",
    ),
    "surveys": ("Patient surveys", LegalBasis.CONSENT, "Satisfaction and follow-up surveys."),
    "review_requests": (
        "Review requests",
        LegalBasis.CONSENT,
        "Asking patients to review a visit.",
    ),
    "platform_accounts": (
        "Staff accounts",
        LegalBasis.CONTRACT,
        "Sign-in and roles of the clinic's staff on the platform.",
    ),
    "security": (
        "Security of the service",
        LegalBasis.LEGITIMATE_INTERESTS,
        "Sign-in records, lockouts and API keys that protect patient data.",
    ),
    "accountability": (
        "Accountability",
        LegalBasis.LEGAL_OBLIGATION,
        "Audit trail and access log that prove how personal data was handled (GDPR Art. 5(2)).",
    ),
    "care_administration": (
        "Patient records and documents",
        LegalBasis.CONTRACT,
        "Keeping the patient's documents (referrals, findings, forms) the care relies on.",
    ),
    "data_subject_rights": (
        "Answering data-subject requests",
        LegalBasis.LEGAL_OBLIGATION,
        "Receiving, verifying and answering requests to access, correct or erase data "
        "(GDPR Art. 12-22), and keeping the proof that they were answered.",
    ),
}
PLATFORM_PURPOSES = {
    slug: CLINIC_PURPOSES[slug]
    for slug in ("platform_accounts", "security", "accountability", "data_subject_rights")
}


def _defaults(organisation: Organisation | None) -> dict[str, tuple[str, str, str]]:
    return CLINIC_PURPOSES if organisation is not None else PLATFORM_PURPOSES


@transaction.atomic
def purposes_ensure_defaults(*, organisation: Organisation | None) -> None:
    """Create the starting purposes once; existing rows (edited by the DPO) are left alone."""
    existing = set(
        ProcessingPurpose.objects.filter(organisation=organisation).values_list("slug", flat=True)
    )
    ProcessingPurpose.objects.bulk_create(
        [
            ProcessingPurpose(
                organisation=organisation,
                slug=slug,
                name=name,
                legal_basis=basis,
                description=description,
            )
            for slug, (name, basis, description) in _defaults(organisation).items()
            if slug not in existing
        ],
        ignore_conflicts=True,
    )


@transaction.atomic
def processing_purpose_update(
    *, purpose: ProcessingPurpose, by: User, **changes: Any
) -> ProcessingPurpose:
    allowed = {"name", "description", "legal_basis", "legal_basis_note"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"Cannot change {sorted(unknown)} of a processing purpose")
    if "legal_basis" in changes and changes["legal_basis"] not in LegalBasis.values:
        raise ValueError(f"Unknown legal basis {changes['legal_basis']!r}")
    previous_basis = purpose.legal_basis
    for name, value in changes.items():
        setattr(purpose, name, value)
    purpose.updated_at = timezone.now()
    purpose.updated_by = by
    purpose.save()
    audit_record(
        action="processing_purpose.updated",
        organisation=purpose.organisation_id,
        object_type="processing_purpose",
        object_id=purpose.pk,
        details={
            "slug": purpose.slug,
            "legal_basis": purpose.legal_basis,
            "previous_legal_basis": previous_basis,
        },
    )
    return purpose


@dataclass
class Activity:
    purpose: ProcessingPurpose | None
    slug: str
    subjects: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)
    retention: set[str] = field(default_factory=set)
    recipients: list[Subprocessor] = field(default_factory=list)
    models: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.purpose.name if self.purpose else self.slug

    @property
    def legal_basis(self) -> str:
        if self.purpose is None:
            return "not recorded yet: add this purpose and its legal basis"
        return self.purpose.get_legal_basis_display()

    @property
    def transfers(self) -> str:
        outside = [s.name for s in self.recipients if not s.in_eea]
        if outside:
            return "outside the EEA: " + ", ".join(outside)
        return "none outside the EEA"

    def as_row(self) -> dict[str, str]:
        return {
            "purpose": self.slug,
            "name": self.name,
            "description": self.purpose.description if self.purpose else "",
            "legal_basis": self.legal_basis,
            "legal_basis_note": self.purpose.legal_basis_note if self.purpose else "",
            "data_subjects": ", ".join(sorted(_readable(k) for k in self.subjects)),
            "data_categories": ", ".join(sorted(_readable(c) for c in self.categories)),
            "recipients": "; ".join(
                f"{s.name} ({s.service}, {s.location})" for s in self.recipients
            ),
            "transfers": self.transfers,
            "retention": "; ".join(
                f"{_readable(r)}: {RETENTION_CATEGORIES.get(r, 'see the retention rules')}"
                for r in sorted(self.retention)
            ),
        }


def _readable(slug: str) -> str:
    """``staff_user`` -> ``staff user``: the record is read by people, not by code."""
    return slug.replace("_", " ")


def _in_scope(entry: ModelEntry, organisation: Organisation | None) -> bool:
    """Clinic record: rows held per organisation. Platform record: rows the platform controls."""
    if organisation is None:
        return any(r.organisation is None for r in entry.reaches)
    return any(r.organisation is not None for r in entry.reaches)


def records_of_processing(*, organisation: Organisation | None) -> list[Activity]:
    purposes_ensure_defaults(organisation=organisation)
    table = {p.slug: p for p in ProcessingPurpose.objects.filter(organisation=organisation)}
    subprocessors = list(Subprocessor.objects.all())
    activities: dict[str, Activity] = {
        slug: Activity(purpose=purpose, slug=slug) for slug, purpose in table.items()
    }
    for entry in registry.entries():
        if not _in_scope(entry, organisation) or not entry.purposes:
            continue
        for slug in entry.purposes:
            activity = activities.setdefault(slug, Activity(purpose=None, slug=slug))
            activity.models.add(entry.label)
            activity.subjects |= {r.kind for r in entry.reaches}
            activity.categories |= {str(f.personal.category) for f in entry.fields}
            activity.retention |= {f.retention for f in entry.fields}
            for sub in subprocessors:
                if sub.slug in entry.recipients and sub not in activity.recipients:
                    activity.recipients.append(sub)
    for activity in activities.values():
        for sub in subprocessors:
            if sub.all_activities and sub not in activity.recipients:
                activity.recipients.insert(0, sub)
    return sorted(activities.values(), key=lambda a: (a.purpose is not None, a.slug))


COLUMNS = [
    "purpose",
    "name",
    "description",
    "legal_basis",
    "legal_basis_note",
    "data_subjects",
    "data_categories",
    "recipients",
    "transfers",
    "retention",
]


def records_rows(activities: list[Activity]) -> Iterator[list[str]]:
    for activity in activities:
        row = activity.as_row()
        yield [row[column] for column in COLUMNS]


def records_document(
    *, organisation: Organisation | None, activities: list[Activity]
) -> dict[str, Any]:
    return {
        "controller": organisation.name if organisation else "Carely Digital d.o.o. (platform)",
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "activities": [activity.as_row() for activity in activities],
    }
