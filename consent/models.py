"""The consent ledger (CON-1), objections (DSR-11) and the marketing suppression list (CON-6).

``ConsentEntry`` rows are only ever inserted: the current state is derived from them
(``consent.selectors``), never stored. The model, its default queryset and a database trigger
(``consent.guards``) refuse updates; the only deletion is the erasure of the contact (through the
personal-data registry, which uses the base manager) or of the whole organisation. Suppression
entries hold keyed hashes only and no link to a contact, so they outlive its erasure.
Writes go through ``consent.services``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

from carely.lib.keyed_hash import COMPACT_LENGTH
from carely.orgs.scoping import OrganisationScopedQuerySet
from carely.privacy.fields import EncryptedCharField, EncryptedTextField


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "e-mail"
    WHATSAPP = "whatsapp", "WhatsApp"
    ALL = "all", "all channels"


# The channels a message can actually go out on; "all" in the ledger stands for each of these.
CONCRETE_CHANNELS: tuple[str, ...] = (Channel.SMS, Channel.EMAIL, Channel.WHATSAPP)


class Status(models.TextChoices):
    GIVEN = "given", "given"
    WITHDRAWN = "withdrawn", "withdrawn"


class Source(models.TextChoices):
    FORM = "form", "web form"
    API = "api", "API"
    STAFF = "staff", "recorded by staff"
    IMPORT = "import", "import"
    UNSUBSCRIBE_LINK = "unsubscribe_link", "unsubscribe link"
    STOP_REPLY = "stop_reply", "STOP reply"
    PREFERENCE_PAGE = "preference_page", "preference page"
    GUARDIAN = "guardian", "parent or guardian"
    SYSTEM = "system", "system"


class Cause(models.TextChoices):
    """Why the platform itself wrote an entry; empty for a person's own choice."""

    NONE = "", "the person's choice"
    LAPSED = "lapsed", "lapsed after two years without a relationship (CON-5)"
    OBJECTION = "objection", "objection to direct marketing (CON-6)"


class ConsentLedgerAppendOnly(Exception):
    """Something tried to change or delete a consent entry (CON-1)."""


class WordingInUse(Exception):
    """A wording that consent entries point to cannot change; publish a new version instead."""


class Purpose(models.Model):
    """What a contact consents to (marketing, reminders, ...): per organisation, by slug."""

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["organisation", "pk"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="consent_purpose_slug")
        ]

    def __str__(self) -> str:
        return self.slug


class Wording(models.Model):
    """The text a person was shown when asked, versioned per purpose and language (CON-1).

    Once an entry points to it, it never changes (``save`` refuses; the entries' foreign key
    restricts deletion): the evidence must show exactly what was agreed to.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    purpose = models.ForeignKey(Purpose, on_delete=models.CASCADE, related_name="wordings")
    language = models.CharField(max_length=8)
    version = models.CharField(max_length=20)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["purpose", "version", "language"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["organisation", "purpose", "version", "language"],
                name="consent_wording_version",
            )
        ]

    def __str__(self) -> str:
        return f"wording {self.version} ({self.language})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding and ConsentEntry._base_manager.filter(wording=self).exists():
            raise WordingInUse(
                f"Wording version {self.version} ({self.language}) has been shown to people and "
                "is their consent's evidence; publish a new version instead of changing it."
            )
        super().save(*args, **kwargs)


class ConsentEntryQuerySet(OrganisationScopedQuerySet["ConsentEntry"]):
    # The registry's erasure and cascades use the base manager, so refusing here stops only
    # code that reaches for Model.objects, which has no business changing the ledger.
    def update(self, **kwargs: Any) -> int:
        raise ConsentLedgerAppendOnly(
            "Consent entries are append-only (CON-1): record a new entry instead of updating."
        )

    def delete(self) -> Any:
        raise ConsentLedgerAppendOnly(
            "Consent entries are deleted only by erasing the contact (DSR-9)."
        )

    delete.queryset_only = True  # type: ignore[attr-defined]


class ConsentEntry(models.Model):
    """One consent event: given or withdrawn, for one purpose and channel (or all channels).

    ``source == "guardian"`` marks the consent of the minor's parent or guardian (CNT-6), who is
    ``guardian`` (set to null if the guardian is later erased; the entry stays the minor's
    evidence). ``cause`` says why the platform wrote an entry on its own (lapse, objection).
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    purpose = models.ForeignKey(Purpose, on_delete=models.RESTRICT, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    wording = models.ForeignKey(
        Wording, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    cause = models.CharField(max_length=20, choices=Cause.choices, blank=True, default="")
    guardian = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_by = models.ForeignKey(
        "orgs.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "api.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    ip_address = EncryptedCharField(max_length=45, blank=True)
    user_agent = EncryptedTextField(blank=True)
    note = EncryptedTextField(blank=True)

    objects = ConsentEntryQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["recorded_at", "pk"]
        verbose_name_plural = "consent entries"
        indexes: ClassVar = [
            # The derived state: latest entry per contact, purpose and channel.
            models.Index(fields=["contact", "purpose", "recorded_at"], name="consent_entry_state"),
            # The daily lapse run looks for old "given" entries per organisation.
            models.Index(
                fields=["organisation", "status", "recorded_at"], name="consent_entry_lapse"
            ),
        ]

    def __str__(self) -> str:
        return f"consent entry #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ConsentLedgerAppendOnly(
                f"Consent entry #{self.pk} cannot be changed (CON-1); record a new entry."
            )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ConsentLedgerAppendOnly(
            f"Consent entry #{self.pk} cannot be deleted; only erasing the contact removes it."
        )


class SuppressionKind(models.TextChoices):
    EMAIL = "email", "e-mail"
    PHONE = "phone", "phone"
    EXTERNAL_ID = "external_id", "external id"


class SuppressionReason(models.TextChoices):
    OBJECTION = "objection", "objection to direct marketing"
    REQUEST = "request", "recorded on request"


class SuppressionEntry(models.Model):
    """Never send marketing to this address (CON-6).

    ``digest`` is ``keyed_hash(normal form, purpose=kind)``: the same value as the contact's
    blind index for that field, so matching is an equality and a re-created or re-imported
    contact with the same address is caught. No contact id is kept, so erasure leaves it.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=SuppressionKind.choices)
    digest = models.CharField(max_length=COMPACT_LENGTH)
    reason = models.CharField(max_length=20, choices=SuppressionReason.choices)
    source = models.CharField(max_length=20, choices=Source.choices)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "suppression entries"
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "digest"], name="consent_suppression_unique"
            )
        ]

    def __str__(self) -> str:
        return f"suppression #{self.pk} ({self.kind})"


class ObjectionKind(models.TextChoices):
    DIRECT_MARKETING = "direct_marketing", "direct marketing"
    LEGITIMATE_INTEREST = "legitimate_interest", "processing on legitimate interest"


class Objection(models.Model):
    """An objection (DSR-11, Art. 21 GDPR).

    Direct marketing: permanent, and it writes suppression entries and withdrawals.
    Legitimate interest: transactional messages stop until the DPO records compelling grounds
    (``grounds_*``: who, when, why), once.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=ObjectionKind.choices)
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, choices=Source.choices)
    note = EncryptedTextField(blank=True)
    grounds_reason = EncryptedTextField(blank=True)
    grounds_recorded_by = models.ForeignKey(
        "orgs.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grounds_recorded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["received_at", "pk"]
        indexes: ClassVar = [
            models.Index(fields=["contact", "kind"], name="consent_objection_contact")
        ]

    def __str__(self) -> str:
        return f"objection #{self.pk}"

    @property
    def has_grounds(self) -> bool:
        return self.grounds_recorded_at is not None


from consent.signups import PendingSignup  # noqa: E402, F401  (the public form's double opt-in)
