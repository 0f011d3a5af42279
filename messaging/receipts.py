"""What the providers tell us by webhook (MSG-7, CON-2): raw receipts, inbound messages kept as
evidence, addresses known to be undeliverable, and each organisation's extra STOP keywords.

Imported from ``messaging.models`` (one line at its end) so Django sees the models; the Celery
task that processes a receipt lives here too, because this module is loaded in every process
(web and worker) with the models, while ``messaging.tasks`` belongs to the dispatch engine.

A webhook answers as soon as the raw body is stored: ``WebhookReceipt`` is the outbox in the
other direction. The body is encrypted (reports and inbound texts hold phone numbers and what
patients wrote), unique per organisation and body digest so a provider's retry is stored once,
and processed on commit by ``webhook_receipt_process``. Processing is idempotent, so running a
receipt twice (a redelivered task, the sweep) changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import ClassVar

from celery import shared_task
from django.db import models
from django.db.models import Q
from django.utils import timezone

from carely.orgs.scoping import OrganisationScopedQuerySet
from carely.privacy.fields import EncryptedCharField, EncryptedTextField


class ReceiptSource(models.TextChoices):
    INFOBIP_REPORTS = "infobip_reports", "Infobip delivery reports"
    INFOBIP_INBOUND = "infobip_inbound", "Infobip inbound messages"
    SES_SNS = "ses_sns", "Amazon SES notification (SNS)"


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class WebhookReceipt(models.Model):
    """One POST a provider made to us, stored before anything is done with it."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    source = models.CharField(max_length=20, choices=ReceiptSource.choices)
    body_sha256 = models.CharField(max_length=64)
    body = EncryptedTextField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A short code and counts only (e.g. "bad_json", "reports=3 unknown=1"), never content.
    outcome = models.CharField(max_length=200, blank=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["organisation", "body_sha256"], name="webhook_receipt_body_unique"
            ),
        ]
        indexes: ClassVar = [
            # The sweep looks for receipts a lost task never processed.
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="webhook_receipt_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"webhook receipt #{self.pk} ({self.source})"


class InboundOutcome(models.TextChoices):
    WITHDRAWN = "withdrawn", "STOP: consent withdrawn"
    ALREADY_WITHDRAWN = "already_withdrawn", "STOP: nothing left to withdraw"
    UNKNOWN_SENDER = "unknown_sender", "sender is not a contact"
    NOT_A_KEYWORD = "not_a_keyword", "an ordinary reply"


class InboundMessage(models.Model):
    """A message a person sent us (SMS or WhatsApp): the evidence of a STOP reply (CON-1, CON-2).

    ``contact`` is the contact the sender's number belongs to (the oldest, when several share a
    number: every one of them is withdrawn, each ledger entry naming this row in its note), or
    empty for an unknown sender, who is never created as a contact.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=10)
    provider_message_id = models.CharField(max_length=200)
    sender = EncryptedCharField(max_length=64)
    text = EncryptedTextField(blank=True)
    # The STOP keyword recognised (normalised, e.g. "odjava"), empty for an ordinary reply.
    keyword = models.CharField(max_length=40, blank=True)
    received_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=20, choices=InboundOutcome.choices)
    # The withdrawal entries this reply wrote (CON-7 asks which entry; a STOP may end several
    # purposes at once).
    consent_entry_ids = models.JSONField(default=list, blank=True)
    cancelled_messages = models.PositiveIntegerField(default=0)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["organisation", "channel", "provider_message_id"],
                name="inbound_message_provider_id_unique",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["organisation", "received_at"], name="inbound_org_received"),
            models.Index(fields=["contact", "received_at"], name="inbound_contact_received"),
        ]

    def __str__(self) -> str:
        return f"inbound message #{self.pk} ({self.channel}, {self.outcome})"

    @property
    def consent_entry_id(self) -> int | None:
        return self.consent_entry_ids[0] if self.consent_entry_ids else None


class UndeliverableAddress(models.Model):
    """An address the provider reported as permanently undeliverable (an SES hard bounce).

    Keyed by the contacts' own blind-index digest (same key and normal form), so it needs no
    contact row, matches a re-imported contact, and holds no readable address. Enqueue and
    dispatch refuse such an address as ``no_address`` through ``messaging.services.sending_decide``.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=10)  # "email" or "phone": the blind index's kind
    digest = models.CharField(max_length=128)
    reason = models.CharField(max_length=60)  # e.g. "ses_bounce_permanent:General"
    first_at = models.DateTimeField(default=timezone.now)
    last_at = models.DateTimeField(default=timezone.now)
    reports = models.PositiveIntegerField(default=1)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "digest"], name="undeliverable_address_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"undeliverable {self.kind} in organisation #{self.organisation_id}"


class StopKeywordSet(models.Model):
    """Keywords an organisation adds to the platform's STOP words (``MESSAGING_STOP_KEYWORDS``),
    e.g. a campaign's own short code word. Additions only: a clinic cannot switch off STOP or
    ODJAVA, which patients are told work everywhere."""

    organisation = models.OneToOneField(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    keywords = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"STOP keywords of organisation #{self.organisation_id}"


class MessagingOptions(models.Model):
    """What an organisation allows on its messaging surfaces beyond the defaults.

    ``api_free_text``: the transactional API may send a ``text`` written by the practice system
    instead of a template. Off by default: a template is reviewed once by the clinic, a free
    text is whatever the calling system puts in it (CON-4 wants content about the relationship).

    ``marketing_cap_count`` / ``marketing_cap_days`` (MSG-4): at most this many marketing
    messages reach one contact (all channels together) in any rolling window of this many days;
    dispatch refuses the next one as ``frequency_cap`` (``messaging.frequency_cap``). A count of
    0 switches the cap off. Transactional messages are never counted or capped.
    """

    organisation = models.OneToOneField(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    api_free_text = models.BooleanField(default=False)
    marketing_cap_count = models.PositiveSmallIntegerField(default=4)
    marketing_cap_days = models.PositiveSmallIntegerField(default=30)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"messaging options of organisation #{self.organisation_id}"


# --- the task ------------------------------------------------------------------------------------
# Redelivered on a lost worker (acks late); retried only for database trouble, never for a bad
# payload (that is recorded on the receipt and will not get better).
@shared_task(
    name="messaging.receipts.webhook_receipt_process",
    ignore_result=True,
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def webhook_receipt_process(receipt_id: int) -> str:
    from messaging.inbound import receipt_process

    return receipt_process(receipt_id=receipt_id)


@shared_task(name="messaging.receipts.webhook_receipts_sweep", ignore_result=True)
def webhook_receipts_sweep() -> dict[str, int]:
    """Periodic: process receipts whose task was lost, delete processed ones past their keep."""
    from messaging.inbound import receipts_sweep

    return receipts_sweep()


def receipt_keep() -> dt.timedelta:
    from django.conf import settings

    return dt.timedelta(days=settings.MESSAGING_WEBHOOK_RECEIPT_KEEP_DAYS)
