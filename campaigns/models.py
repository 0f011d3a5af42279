"""Marketing campaigns (MSG-2, MSG-4, MSG-10): saved audiences, campaigns and their steps.

A campaign never sends anything itself. Once approved and due, ``campaigns.materialise`` streams
its audience into the messaging outbox (``messages_enqueue_bulk`` with ``campaign_id``), and the
messaging core dispatches those rows, deciding eligibility again for each one (MSG-5). Writes go
through ``campaigns.services``.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from carely.orgs.scoping import OrganisationScopedQuerySet


class Audience(models.Model):
    """A saved filter over an organisation's contacts (MSG-4): attributes and consent state.

    ``filters`` is validated by ``campaigns.audiences.filters_clean``; it names attributes and
    values, never a person. A campaign copies the filter when it is submitted for approval, so
    editing the saved audience later cannot change what the approver approved.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    filters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["name", "pk"]

    def __str__(self) -> str:
        return f"audience {self.name!r}"


class State(models.TextChoices):
    DRAFT = "draft", "draft"
    AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
    SCHEDULED = "scheduled", "scheduled"
    SENDING = "sending", "sending"
    PAUSED = "paused", "paused"
    COMPLETED = "completed", "completed"
    CANCELLED = "cancelled", "cancelled"


# States in which nothing more will happen.
FINAL_STATES = (State.COMPLETED.value, State.CANCELLED.value)


class Schedule(models.TextChoices):
    NOW = "now", "send as soon as approved"
    AT = "at", "send at a time"
    WINDOW = "window", "spread over a window"


class Campaign(models.Model):
    """One marketing send: purpose, channels in order of preference, a template per language,
    an audience, a schedule, and the four-eyes approval that lets it go (MSG-2, MSG-4).

    ``channels`` is the preference order ("whatsapp", "sms", "email"): each contact gets the
    campaign on the first channel it may receive it on, and never on two. ``materialised_through``
    is the cursor of the materialiser (the highest contact id handled), committed with each
    batch's outbox rows, so a restart continues where the last commit ended.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=150)
    purpose = models.SlugField(max_length=60)
    channels = models.JSONField(default=list)
    fallback_language = models.CharField(max_length=8, default="sl")
    audience = models.ForeignKey(
        Audience, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    # The audience's filter as submitted for approval: what is approved is what is sent.
    audience_filters = models.JSONField(default=dict, blank=True)
    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.NOW)
    send_at = models.DateTimeField(null=True, blank=True)
    send_until = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    # Content drafted by the AI assistant (a later issue) also needs the four-eyes approval.
    ai_drafted = models.BooleanField(default=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Materialisation: the cursor and what it found, committed with each batch.
    materialised_through = models.BigIntegerField(default=0)
    materialised_at = models.DateTimeField(null=True, blank=True)
    audience_total = models.PositiveIntegerField(default=0)
    targeted = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    # {reason code: count} for contacts never queued (no consent, suppressed, ...).
    exclusions = models.JSONField(default=dict, blank=True)
    # {channel: count} of rows queued per channel.
    queued_by_channel = models.JSONField(default=dict, blank=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["-created_at", "-pk"]
        indexes: ClassVar = [
            models.Index(fields=["state", "send_at"], name="campaign_state_due"),
        ]

    def __str__(self) -> str:
        return f"campaign {self.name!r} ({self.state})"

    @property
    def dedupe_key(self) -> str:
        return f"campaign:{self.pk}"


class CampaignTemplate(models.Model):
    """The template a campaign uses for one channel and language (MSG-3). A contact whose
    language has none gets the campaign's fallback language."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="templates")
    channel = models.CharField(max_length=10)
    language = models.CharField(max_length=8)
    template = models.ForeignKey(
        "messaging.MessageTemplate", on_delete=models.PROTECT, related_name="+"
    )

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["campaign", "channel", "language"], name="campaign_template_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"campaign #{self.campaign_id} {self.channel}/{self.language}"


class CampaignStep(models.Model):
    """Append-only record of what happened to a campaign and who did it (created, submitted,
    approved, rejected, started, paused, resumed, cancelled, completed), mirrored to the audit
    log. ``note`` is the staff member's own words (a rejection's reason)."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    kind = models.CharField(max_length=20)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["at", "pk"]

    def __str__(self) -> str:
        return f"campaign #{self.campaign_id} {self.kind}"


class CampaignLink(models.Model):
    """A link in a campaign's text, sent through the platform's own redirect (``/r/<token>/``)
    so a click is recorded as a performed action (MSG-6, MSG-10) without a third-party tracker.
    The token is signed and names the campaign, the contact and this link's number."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="links")
    number = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=2000)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["campaign", "number"], name="campaign_link_number"),
            models.UniqueConstraint(fields=["campaign", "url"], name="campaign_link_url"),
        ]

    def __str__(self) -> str:
        return f"campaign #{self.campaign_id} link {self.number}"
