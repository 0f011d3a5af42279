"""Recordings and documents attached to a contact (CNT-5).

The stored object's key is random and scoped by organisation and contact; the name the file had on
the uploader's computer can hold a patient's name, so it is kept encrypted in the row, never in
the key. Writes go through ``files.services``, reads through ``files.selectors``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from carely.orgs.scoping import OrganisationScopedQuerySet
from carely.privacy.fields import EncryptedCharField


class FileKind(models.TextChoices):
    RECORDING = "recording", "recording"
    DOCUMENT = "document", "document"


def contact_file_path(instance: ContactFile, filename: str) -> str:
    """``contact-files/<organisation>/<contact>/<random>``: no part of the uploaded name, and no
    extension either (the sniffed type is in the row)."""
    return f"contact-files/{instance.organisation_id}/{instance.contact_id}/{uuid.uuid4().hex}"


class ContactFile(models.Model):
    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="files")
    kind = models.CharField(max_length=10, choices=FileKind.choices)
    original_name = EncryptedCharField(max_length=255)
    stored_file = models.FileField(upload_to=contact_file_path, max_length=255)
    content_type = models.CharField(max_length=100)  # as sniffed from the content
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["organisation", "contact", "uploaded_at"], name="contactfile_org_contact"
            ),
        ]

    def __str__(self) -> str:
        return f"contact file #{self.pk}"
