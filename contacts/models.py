"""The clinic's patient register (CNT-1): contacts, their rectification history (DSR-8).

Names, dates of birth, channels and addresses are encrypted at rest (SEC-8); e-mail, phone and
external id are found by equality through blind indexes (``Contact.objects.filter_blind``).
Rules about what a valid contact is live in ``contacts.validation``; writes go through
``contacts.services``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from carely.orgs.scoping import OrganisationScopedQuerySet
from carely.privacy.fields import (
    BlindIndexed,
    BlindIndexField,
    BlindIndexQuerySet,
    EncryptedCharField,
    EncryptedDateField,
    EncryptedTextField,
)


class ContactQuerySet(OrganisationScopedQuerySet["Contact"], BlindIndexQuerySet):  # type: ignore[override]
    pass


class Gender(models.TextChoices):
    FEMALE = "female", "female"
    MALE = "male", "male"
    OTHER = "other", "other"
    UNDISCLOSED = "undisclosed", "prefers not to say"


class SourceKind(models.TextChoices):
    FORM = "form", "web form"
    API = "api", "API"
    IMPORT = "import", "CSV import"
    STAFF = "staff", "entered by staff"


class RelationshipStatus(models.TextChoices):
    NONE = "none", "no relationship"
    ACTIVE = "active", "active (in care)"
    ENDED = "ended", "ended"


class Contact(BlindIndexed, models.Model):
    """A data subject of one organisation. Only a name and one channel are required (CNT-1)."""

    # No index of its own: every lookup is per organisation and (organisation, updated_at)
    # serves it; one index less to write per imported row (ADR 0008).
    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    first_name = EncryptedCharField(max_length=100, blank=True)
    last_name = EncryptedCharField(max_length=100, blank=True)
    birth_date = EncryptedDateField(null=True, blank=True)
    gender = EncryptedCharField(max_length=20, blank=True, choices=Gender.choices)
    external_id = EncryptedCharField(max_length=100, blank=True)
    external_id_bidx = BlindIndexField(source="external_id", kind="external_id")
    email = EncryptedCharField(max_length=254, blank=True)
    email_bidx = BlindIndexField(source="email", kind="email")
    phone = EncryptedCharField(max_length=32, blank=True)  # E.164
    phone_bidx = BlindIndexField(source="phone", kind="phone")
    preferred_language = models.CharField(max_length=8, blank=True)
    address = EncryptedTextField(blank=True)
    source_kind = models.CharField(max_length=10, choices=SourceKind.choices)
    source = models.CharField(max_length=200, blank=True)
    relationship_status = models.CharField(
        max_length=10, choices=RelationshipStatus.choices, default=RelationshipStatus.NONE
    )
    relationship_started_at = models.DateField(null=True, blank=True)
    relationship_ended_at = models.DateField(null=True, blank=True)
    guardian = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="wards"
    )
    # 13 to 17 at the last save (CNT-6): consent-based processing waits for a guardian's consent.
    is_minor = models.BooleanField(default=False)
    # Restriction (CNT-4, DSR-10): the contact is only stored while restricted_at is set.
    restricted_at = models.DateTimeField(null=True, blank=True)
    restriction_reason = EncryptedTextField(blank=True)
    restriction_lifted_at = models.DateTimeField(null=True, blank=True)
    restriction_lift_informed_at = models.DateTimeField(null=True, blank=True)
    restriction_lift_informed_how = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)  # indexed with organisation (Meta)

    objects = ContactQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "updated_at"], name="contact_org_updated"),
            # One clinic's contacts in id order: a campaign walks its audience by id (keyset
            # batches). By the primary key alone, the first batch of a clinic whose contacts
            # came late read past every earlier clinic's (900,000 rows, 0.4 s in the bench).
            models.Index(fields=["organisation", "id"], name="contact_org_id"),
        ]

    def __str__(self) -> str:
        return f"contact #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        from contacts.validation import is_minor

        self.is_minor = is_minor(self.birth_date)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "birth_date" in update_fields:
            kwargs["update_fields"] = {*update_fields, "is_minor"}
        super().save(*args, **kwargs)

    @property
    def is_restricted(self) -> bool:
        return self.restricted_at is not None


class ChangeKind(models.TextChoices):
    RECTIFICATION = "rectification", "rectification"
    SUPPLEMENTARY_STATEMENT = "supplementary_statement", "supplementary statement"
    RESTRICTED = "restricted", "restricted"
    RESTRICTION_LIFTED = "restriction_lifted", "restriction lifted"


class ContactChange(models.Model):
    """Append-only history of a contact (DSR-8): before and after of each changed field, who,
    when and why, or a supplementary statement that completes the record.

    ``changes`` is JSON (``{"email": {"before": ..., "after": ...}}``) inside an encrypted text
    column: the old values are personal data too.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=30, choices=ChangeKind.choices)
    changes = EncryptedTextField(blank=True)
    statement = EncryptedTextField(blank=True)
    reason = EncryptedTextField(blank=True)
    actor_type = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"contact change #{self.pk}"

    def changed(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self.changes)) if self.changes else {}


def contact_import_upload_path(instance: ImportJob, filename: str) -> str:
    """Per-organisation folder, random name: the file name a clinic chose may name a patient."""
    import uuid

    return f"contact-imports/org-{instance.organisation_id}/{uuid.uuid4().hex}.csv"


class ImportState(models.TextChoices):
    UPLOADED = "uploaded", "uploaded"
    MAPPED = "mapped", "columns mapped"
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"


class ImportJob(models.Model):
    """One CSV upload into the register (CNT-2): uploaded, mapped, running, completed or failed.

    ``upload`` and ``rejected_file`` hold many patients' data and live in the default storage
    (never a public URL); the upload is deleted when the import ends, the rejected rows after
    ``CONTACT_IMPORT_KEEP_DAYS`` (contacts.imports.contact_imports_purge); counts stay.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    created_by = models.ForeignKey(
        "orgs.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    upload = models.FileField(upload_to=contact_import_upload_path, max_length=255, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=10, choices=ImportState.choices, default=ImportState.UPLOADED
    )
    bytes_read = models.PositiveBigIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # JSON lines {"row", "cells", "errors"}: the result page lists the first, the download all.
    rejected_file = models.FileField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    files_purged_at = models.DateTimeField(null=True, blank=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"contact import #{self.pk}"

    @property
    def processed(self) -> int:
        return self.created + self.updated + self.unchanged + self.rejected

    @property
    def is_finished(self) -> bool:
        return self.state in (ImportState.COMPLETED, ImportState.FAILED)


def tag_key(name: str) -> str:
    """A tag's identity within its organisation: its name, case-folded."""
    return name.casefold()


class Tag(models.Model):
    """A label from the clinic's own vocabulary ("diabetes-check", "newsletter-2026"), put on
    contacts so audiences can filter on it. The name alone is not personal data; a tag on a
    contact is (``ContactTag``).

    ``key`` is the name case-folded in Python, unique per organisation: "Diabetes" and
    "diabetes" are one tag. Folding in Python rather than with SQL ``lower()`` keeps č, š and ž
    equal on SQLite too, whose ``lower()`` only knows ASCII.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    name = models.CharField(max_length=40)
    key = models.CharField(max_length=120)  # casefold lengthens a character to 3 at most
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["key", "pk"]
        constraints = [
            # Also the index for "this organisation's tags" and lookups by name.
            models.UniqueConstraint(fields=["organisation", "key"], name="contact_tag_key_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    """One tag on one contact. Personal data: a tag can reveal a health fact about the patient,
    so the link is erased and exported with the contact (contacts/privacy.py).

    ``name`` repeats the tag's name so the access export (DSR-6) reads "diabetes-check" rather
    than an id the person cannot look up; ``tag_rename`` keeps it equal to ``tag.name``.
    """

    # No index of its own: every lookup goes through the contact or the tag.
    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # (contact, tag) is unique, and that index serves the contact's own tags.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="tag_links", db_index=False
    )
    # (tag, contact) below serves "contacts with tag X" (audiences) and the tag's count.
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="links", db_index=False)
    name = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["contact", "tag"], name="contact_tag_once"),
        ]
        indexes = [models.Index(fields=["tag", "contact"], name="contact_tag_tag_contact")]

    def __str__(self) -> str:
        return f"contact tag #{self.pk}"
