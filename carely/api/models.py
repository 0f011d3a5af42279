from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from carely.orgs.scoping import OrganisationScopedQuerySet

# Keys look like ``cpk_<43 url-safe characters>``; the marker lets secret scanners (and people)
# recognise a leaked Carely key, and the prefix after it identifies a key in lists.
KEY_MARKER = "cpk_"
PREFIX_LENGTH = 8


class ApiKey(models.Model):
    """A secret that lets one organisation's systems call the API (SEC-3).

    Only an HMAC of the key is stored (ADR 3); the plaintext is shown once, at creation.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, help_text="Public id shown in lists.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty means the platform default."
    )

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-created_at", "-pk"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"API key {self.display_prefix} of organisation #{self.organisation_id}"

    @property
    def display_prefix(self) -> str:
        return f"{KEY_MARKER}{self.prefix}…"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def rate_per_minute(self) -> int:
        return self.rate_limit_per_minute or settings.API_DEFAULT_RATE_PER_MINUTE

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an ``Idempotency-Key``, replayed for repeats."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", "in flight"
        COMPLETED = "completed", "completed"

    LIFETIME = dt.timedelta(hours=24)

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_per_api_key"),
        ]
        # The expiry sweep filters on created_at alone.
        indexes: ClassVar = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"idempotency record #{self.pk} ({self.state})"
