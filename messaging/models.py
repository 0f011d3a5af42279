"""The messaging outbox (MSG-1, MSG-6, MSG-9, CON-7): templates, messages, their timelines and
the provider account of each organisation.

A message is a row before it is a provider call (DESIGN.md, "Outbox before side effects"):
``messaging.services.message_enqueue`` writes it, ``messaging.dispatch`` claims, re-decides,
hands it to the provider and records what came back; ``messaging.reconcile`` resolves rows a
crashed worker left in ``sending``. Writes go through those modules only.
"""

from __future__ import annotations

import secrets
import time
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from carely.orgs.scoping import OrganisationScopedQuerySet
from carely.privacy.fields import EncryptedCharField, EncryptedTextField


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "e-mail"
    WHATSAPP = "whatsapp", "WhatsApp"


class Kind(models.TextChoices):
    MARKETING = "marketing", "marketing"
    TRANSACTIONAL = "transactional", "transactional"


class Status(models.TextChoices):
    QUEUED = "queued", "queued"
    DEFERRED = "deferred", "deferred (quiet hours or provider back-off)"
    SENDING = "sending", "sending"
    SENT = "sent", "sent"
    DELIVERED = "delivered", "delivered"
    UNDELIVERABLE = "undeliverable", "undeliverable"
    EXPIRED = "expired", "expired"
    REJECTED = "rejected", "rejected"
    FAILED = "failed", "failed"
    REFUSED = "refused", "refused (not eligible at dispatch)"
    CANCELLED = "cancelled", "cancelled"
    # Its campaign is paused: dispatch never claims it; resume queues it again (campaigns).
    HELD = "held", "held (campaign paused)"


# Waiting for a worker: what dispatch claims when due.
WAITING = (Status.QUEUED.value, Status.DEFERRED.value)
# The provider has it (or had it): never handed over again.
HANDED_OVER = (
    Status.SENT.value,
    Status.DELIVERED.value,
    Status.UNDELIVERABLE.value,
    Status.EXPIRED.value,
    Status.REJECTED.value,
)
# Ended here without reaching the provider, each with a reason.
ENDED_HERE = (Status.FAILED.value, Status.REFUSED.value, Status.CANCELLED.value)
FINAL = (Status.DELIVERED, Status.UNDELIVERABLE, Status.EXPIRED, Status.REJECTED, *ENDED_HERE)


class EventSource(models.TextChoices):
    ENQUEUE = "enqueue", "enqueue"
    DISPATCH = "dispatch", "dispatch"
    WEBHOOK = "webhook", "provider webhook"
    RECONCILER = "reconciler", "reconciler"
    API = "api", "API"
    STAFF = "staff", "staff"
    CONSENT = "consent", "consent withdrawn"  # the consent_withdrawn signal (CON-2)
    PATIENT = "patient", "the patient"  # a performed action: a tracked link clicked (MSG-6)


class MessageTemplate(models.Model):
    """One version of a clinic's text for one channel and language (MSG-3).

    A version is never edited: ``messaging.services.template_save`` writes a new version and
    retires the previous one, so every message can show exactly the text it was made from.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=15, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    language = models.CharField(max_length=8)
    version = models.PositiveIntegerField(default=1)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    html_body = models.TextField(blank=True)
    # The custom variable names the template may use besides the built-in ones.
    variables = models.JSONField(default=list, blank=True)
    # A WhatsApp template registered with Meta (sent by name, the body only previews it).
    whatsapp_template_name = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["organisation", "name", "channel", "language", "version"],
                name="message_template_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"template {self.name!r} v{self.version} ({self.channel}, {self.language})"


def our_id_new() -> str:
    """Our message id, sent to the provider as ``messageId``: 32 hex digits, the first 12 the
    milliseconds since 1970 and the other 20 random (80 bits, so never guessed or repeated).

    Time first, so the unique index on it grows at its right edge as the outbox does: a
    campaign's thousands of rows land on a few index pages instead of one random page each,
    which cost a sixth of the database's time writing them (bench/README.md)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


class Message(models.Model):
    """One message to one contact on one channel: the outbox row and its record (MSG-6).

    ``contact`` is emptied (not the row deleted) when the contact is erased: the row keeps its
    channel, kind, status and times for metering (TEN-5), while the registry empties every
    personal column. A queued row whose contact is gone is refused at dispatch as ``erased``.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # Not indexed alone: message_contact_created leads with the contact. Every index is paid
    # for on each of a campaign's rows (bench/README.md), so only those a query uses are kept.
    contact = models.ForeignKey(
        "contacts.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=15, choices=Kind.choices)
    purpose = models.SlugField(max_length=60, db_index=False)  # no query selects by it alone
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template_version = models.PositiveIntegerField(null=True, blank=True)
    # What was (or will be) sent, as rendered at enqueue.
    subject = EncryptedTextField(blank=True)
    body = EncryptedTextField(blank=True)
    html_body = EncryptedTextField(blank=True)
    # Channel extras as JSON: e-mail headers (List-Unsubscribe carries the contact's token),
    # WhatsApp template name, language and placeholder values.
    extras = EncryptedTextField(blank=True)
    # The e-mail address or E.164 number the message goes to.
    to_address = EncryptedCharField(max_length=254, blank=True)
    # CON-7: why this message may go out.
    legal_basis = models.CharField(max_length=30, blank=True)
    consent_entry_id = models.BigIntegerField(null=True, blank=True)
    refusal_reasons = models.JSONField(default=list, blank=True)

    # Unique by the constraint in Meta: ``unique=True`` would add a second index for LIKE.
    our_id = models.CharField(max_length=32, default=our_id_new, editable=False)
    provider = models.CharField(max_length=30, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    # "campaign:<id>", "api:<api key id>:<Idempotency-Key>", "staff:<uuid>" (MSG-9).
    dedupe_key = models.CharField(max_length=300)

    status = models.CharField(max_length=15, choices=Status.choices, default=Status.QUEUED)
    due_at = models.DateTimeField(default=timezone.now)
    respect_quiet_hours = models.BooleanField(default=True)
    # A worker owns a ``sending`` row until lease_until; after that the reconciler resolves it.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Set (and committed) just before the provider call: a row in ``sending`` without it never
    # reached the provider and may be released; with it, only the provider can say (MSG-9).
    handed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    error_permanent = models.BooleanField(default=False)
    parts_estimated = models.PositiveSmallIntegerField(default=1)
    parts_reported = models.PositiveSmallIntegerField(null=True, blank=True)
    campaign_id = models.BigIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "api.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            # A second enqueue of the same request for the same contact and channel is a no-op.
            models.UniqueConstraint(
                fields=["organisation", "dedupe_key", "contact", "channel"],
                name="message_dedupe_unique",
            ),
            # Delivery reports and lookups find a message by the id the provider was given.
            models.UniqueConstraint(fields=["our_id"], name="message_our_id_unique"),
        ]
        indexes: ClassVar = [
            # Dispatch claims due rows per kind (transactional first); partial, so the index
            # stays as small as the backlog instead of growing with the whole history.
            models.Index(
                fields=["kind", "due_at"],
                condition=Q(status__in=WAITING),
                name="message_due",
            ),
            models.Index(
                fields=["lease_until"], condition=Q(status="sending"), name="message_lease"
            ),
            models.Index(fields=["organisation", "created_at"], name="message_org_created"),
            models.Index(fields=["contact", "created_at"], name="message_contact_created"),
            models.Index(fields=["provider", "provider_message_id"], name="message_provider_id"),
        ]

    def __str__(self) -> str:
        return f"message #{self.pk} ({self.channel}, {self.status})"

    @property
    def queue(self) -> str:
        return queue_for(self.kind)


def queue_for(kind: str) -> str:
    """Transactional messages have their own Celery queue: never behind a campaign's bulk."""
    if kind == Kind.TRANSACTIONAL:
        return str(settings.MESSAGING_TRANSACTIONAL_QUEUE)
    return str(settings.MESSAGING_BULK_QUEUE)


class MessageEvent(models.Model):
    """Append-only timeline of one message: statuses and performed actions (MSG-6).

    ``detail`` holds codes and ids only (provider status ids and names, error ids, refusal
    reasons), never content, names or addresses. ``provider_event_key`` makes a report that
    arrives twice a no-op (unique per message).
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=12, choices=EventSource.choices)
    detail = models.JSONField(default=dict, blank=True)
    # NULL, not "", for events that need no key: NULLs never collide in the unique constraint.
    provider_event_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering: ClassVar = ["at", "pk"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["message", "provider_event_key"],
                condition=Q(provider_event_key__isnull=False),
                name="message_event_provider_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"message #{self.message_id} {self.kind}"


def webhook_token_new() -> str:
    return secrets.token_urlsafe(32)


class ProviderAccount(models.Model):
    """An organisation's own provider settings; every blank field falls back to the platform's
    (``settings.INFOBIP_*``, ``MESSAGING_*_SENDER``, ``DEFAULT_FROM_EMAIL``).

    One row per organisation, created on first use (``provider_account_for``), because the
    webhook URLs need the organisation's own unguessable token even on platform credentials.
    The per-account rate limit is keyed by the credentials actually used: every organisation on
    the platform's key shares one limit, as the provider counts them together.
    """

    organisation = models.OneToOneField(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    infobip_base_url = models.URLField(blank=True)
    infobip_api_key = EncryptedTextField(blank=True)
    sms_sender = models.CharField(max_length=24, blank=True)
    whatsapp_sender = models.CharField(max_length=24, blank=True)
    email_from = models.CharField(max_length=254, blank=True)
    # In the webhook URLs the other side calls (/webhooks/infobip/<token>/...).
    webhook_token = models.CharField(max_length=64, unique=True, default=webhook_token_new)
    # A static secret header or Basic password set in Infobip's subscription profile.
    webhook_secret = EncryptedTextField(blank=True)
    # Quiet hours in the organisation's time zone (MSG-4): marketing waits until they end.
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    quiet_hours_enabled = models.BooleanField(default=True)
    # č/š/ž -> c/s/z in SMS so a Slovenian text stays in GSM-7 (fewer parts).
    sms_transliterate = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"provider account of organisation #{self.organisation_id}"


class WhatsAppSession(models.Model):
    """When a contact last wrote to the organisation on WhatsApp: free-form text may be sent
    only within 24 hours of it (Meta's customer service window). The inbound webhook updates it
    through ``messaging.services.whatsapp_inbound_note``."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    last_inbound_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["organisation", "contact"], name="whatsapp_session_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"WhatsApp session of contact #{self.contact_id}"


# The webhook side (receipts, inbound evidence, undeliverable addresses): messaging/receipts.py.
from messaging import receipts as _receipts  # noqa: E402, F401
