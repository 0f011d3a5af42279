"""Records of processing (SEC-6): the editable part.

The registry knows which data each purpose uses, who receives it and how long it is kept; what it
cannot know is the legal basis a clinic relies on for each purpose and how it describes it. That is
this small table, one row per purpose and organisation (organisation empty: the platform's own
record as controller of staff accounts and its own logs).
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from carely.orgs.scoping import OrganisationScopedQuerySet


class LegalBasis(models.TextChoices):
    CONSENT = "consent", _("Consent (GDPR Art. 6(1)(a))")
    CONTRACT = "contract", _("Contract (GDPR Art. 6(1)(b))")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation (GDPR Art. 6(1)(c))")
    VITAL_INTERESTS = "vital_interests", _("Vital interests (GDPR Art. 6(1)(d))")
    PUBLIC_TASK = "public_task", _("Public task (GDPR Art. 6(1)(e))")
    LEGITIMATE_INTERESTS = "legitimate_interests", _("Legitimate interests (GDPR Art. 6(1)(f))")


class ProcessingPurpose(models.Model):
    organisation = models.ForeignKey(
        "orgs.Organisation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="processing_purposes",
        help_text="Empty for the platform's own record.",
    )
    slug = models.SlugField(max_length=60)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    legal_basis = models.CharField(max_length=24, choices=LegalBasis.choices)
    legal_basis_note = models.CharField(
        max_length=300, blank=True, help_text="e.g. the law that obliges it, or the balancing test"
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="purpose_org_slug"),
            models.UniqueConstraint(
                fields=["slug"],
                condition=models.Q(organisation__isnull=True),
                name="purpose_platform_slug",
            ),
        ]
        ordering: ClassVar = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Subprocessor(models.Model):
    """A processor the platform engages (SEC-7). Platform-wide: every organisation uses them."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    service = models.CharField(max_length=200)
    location = models.CharField(max_length=120, help_text="where the data is processed")
    in_eea = models.BooleanField(default=True)
    # Hosting reaches every activity; a messaging provider only those that name it.
    all_activities = models.BooleanField(default=False)

    class Meta:
        ordering: ClassVar = ["name"]

    def __str__(self) -> str:
        return self.name
