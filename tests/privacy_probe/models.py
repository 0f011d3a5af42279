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


class ProbeQuerySet(OrganisationScopedQuerySet, BlindIndexQuerySet):
    pass


class ProbePatient(BlindIndexed, models.Model):
    """Stands in for a clinic's contact: encrypted identity and contact data, blind indexes."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    first_name = EncryptedCharField(max_length=100)
    last_name = EncryptedCharField(max_length=100, blank=True)
    email = EncryptedCharField(max_length=254, blank=True)
    email_bidx = BlindIndexField(source="email", kind="email")
    phone = EncryptedCharField(max_length=32, blank=True)
    phone_bidx = BlindIndexField(source="phone", kind="phone")
    birth_date = EncryptedDateField(null=True, blank=True)
    notes = EncryptedTextField(blank=True)
    photo = models.FileField(upload_to="privacy_probe/", blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProbeQuerySet.as_manager()

    def __str__(self) -> str:
        return f"probe patient #{self.pk}"


class ProbeNote(models.Model):
    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    patient = models.ForeignKey(ProbePatient, on_delete=models.CASCADE, related_name="probe_notes")
    body = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"probe note #{self.pk}"


class ProbeInvoice(models.Model):
    """A record the law makes us keep: it refers to the patient by id, not by a foreign key."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    patient_ref = models.BigIntegerField()
    number = models.CharField(max_length=20)
    amount_cents = models.IntegerField()
    payer_email = models.CharField(max_length=254, blank=True)
    remark = models.TextField(blank=True)
    restricted_at = models.DateTimeField(null=True, blank=True)

    objects = OrganisationScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"probe invoice #{self.pk}"
