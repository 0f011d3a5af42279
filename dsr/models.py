"""Data-subject requests (DSR-1..DSR-14): the request, its append-only steps and what it produced.

A request lives in one queue: its organisation's (a clinic's patients, DSR-2) or the platform's
(``organisation`` None: staff users, customers' contact persons, visitors). Everything a request
does goes through ``dsr.services``, which appends a ``DsrStep`` and mirrors it to the audit log;
the steps are the record DSR-14 asks for and the evidence pack is built from them.

What the requester told us about themselves (name, e-mail, phone, external id) is kept encrypted
and is only used to find and answer them; once the request is closed after an erasure it is
replaced by keyed hashes (``dsr.services.dsr_close``), so the request can still show that it was
answered without holding what was erased.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from carely.audit.models import AppendOnlyQuerySet
from carely.orgs.scoping import OrganisationScopedQuerySet
from carely.privacy.fields import (
    BlindIndexed,
    BlindIndexField,
    BlindIndexQuerySet,
    EncryptedCharField,
    EncryptedTextField,
)


class RequestType(models.TextChoices):
    ACCESS = "access", "access"
    RECTIFICATION = "rectification", "rectification"
    ERASURE = "erasure", "erasure"
    RESTRICTION = "restriction", "restriction"
    PORTABILITY = "portability", "portability"
    OBJECTION = "objection", "objection"
    WITHDRAWAL = "withdrawal", "consent withdrawal"


class RequestChannel(models.TextChoices):
    FORM = "form", "public request form"
    API = "api", "API"
    EMAIL = "email", "e-mail"
    LETTER = "letter", "letter"
    PHONE = "phone", "phone"
    IN_PERSON = "in_person", "in person"
    FORWARDED = "forwarded", "forwarded by the platform"


class SubjectKind(models.TextChoices):
    CONTACT = "contact", "a clinic's patient or contact"
    STAFF_USER = "staff_user", "a user of the platform"
    CUSTOMER_CONTACT = "customer_contact", "a customer's contact person"
    VISITOR = "visitor", "a visitor of the platform's sites"


class State(models.TextChoices):
    RECEIVED = "received", "received"
    AWAITING_VERIFICATION = "awaiting_verification", "awaiting identity verification"
    AWAITING_INFORMATION = "awaiting_information", "awaiting information from the subject"
    VERIFIED = "verified", "verified"
    DECIDED = "decided", "decided"
    EXECUTED = "executed", "carried out"
    CLOSED = "closed", "closed"
    FORWARDED = "forwarded", "forwarded to the clinic"


OPEN_STATES = (
    State.RECEIVED,
    State.AWAITING_VERIFICATION,
    State.AWAITING_INFORMATION,
    State.VERIFIED,
    State.DECIDED,
    State.EXECUTED,
)


class Decision(models.TextChoices):
    GRANTED = "granted", "granted"
    REFUSED_UNFOUNDED = "refused_unfounded", "refused: manifestly unfounded"
    REFUSED_EXCESSIVE = "refused_excessive", "refused: manifestly excessive"
    FEE = "fee", "a reasonable fee is charged"
    REFUSED_IDENTITY = "refused_identity", "refused: the subject cannot be identified"
    REFUSED_COMPELLING_GROUNDS = (
        "refused_compelling_grounds",
        "objection refused: compelling legitimate grounds recorded",
    )


REFUSALS = (
    Decision.REFUSED_UNFOUNDED,
    Decision.REFUSED_EXCESSIVE,
    Decision.REFUSED_IDENTITY,
    Decision.REFUSED_COMPELLING_GROUNDS,
)


class ReplyChannel(models.TextChoices):
    EMAIL = "email", "e-mail"
    SMS = "sms", "SMS"
    LETTER = "letter", "letter (sent by staff)"


class DsrQuerySet(OrganisationScopedQuerySet["DataSubjectRequest"], BlindIndexQuerySet):  # type: ignore[override]
    pass


class DataSubjectRequest(BlindIndexed, models.Model):
    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # What the subject quotes in letters and sees in notices ("DSR-7K4M-2QX9"); not guessable.
    reference = models.CharField(max_length=20, unique=True)
    type = models.CharField(max_length=20, choices=RequestType.choices)
    channel = models.CharField(max_length=12, choices=RequestChannel.choices)
    state = models.CharField(max_length=24, choices=State.choices, default=State.RECEIVED)
    subject_kind = models.CharField(
        max_length=20, choices=SubjectKind.choices, default=SubjectKind.CONTACT
    )
    # A complaint about an access decision (DSR-13) is a new request linked to the decided one.
    complaint_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="complaints"
    )
    # A request that reached the platform about a clinic's patient, and the clinic's copy of it.
    forwarded_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="forwarded_copies"
    )

    received_at = models.DateTimeField(default=timezone.now)
    # The day the one-month clock runs from: receipt, or the day identity information asked for
    # under DSR-3 arrived (ADR 0013).
    clock_started_on = models.DateField()
    due_on = models.DateField()
    extended_at = models.DateTimeField(null=True, blank=True)
    extension_reason = models.TextField(blank=True)

    # Who the request says it is about, as given; matching uses the blind indexes.
    subject_name = EncryptedCharField(max_length=200, blank=True)
    subject_email = EncryptedCharField(max_length=254, blank=True)
    subject_email_bidx = BlindIndexField(source="subject_email", kind="email")
    subject_phone = EncryptedCharField(max_length=32, blank=True)
    subject_phone_bidx = BlindIndexField(source="subject_phone", kind="phone")
    subject_external_id = EncryptedCharField(max_length=100, blank=True)
    subject_external_id_bidx = BlindIndexField(source="subject_external_id", kind="external_id")
    details = EncryptedTextField(blank=True)
    language = models.CharField(max_length=8, default="sl")
    reply_channel = models.CharField(
        max_length=8, choices=ReplyChannel.choices, default=ReplyChannel.EMAIL
    )
    # The contact the DPO confirmed this request is about (never picked silently among several).
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Subject's own staff account, for platform requests about a user.
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    subject_confirmed_at = models.DateTimeField(null=True, blank=True)

    verified_at = models.DateTimeField(null=True, blank=True)
    verification_method = models.CharField(max_length=12, blank=True)  # code | attestation

    decision = models.CharField(max_length=30, choices=Decision.choices, blank=True)
    decision_reason = models.TextField(blank=True)
    fee_cents = models.PositiveIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Rectification: the changes asked for ({"field": "new value"}), kept encrypted.
    changes = EncryptedTextField(blank=True)
    # Result counts of carrying it out (no personal data: models, categories, numbers).
    result = models.JSONField(default=dict, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Set when the subject's details above were replaced by keyed hashes (after an erasure).
    subject_details_erased_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "api.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_reminded_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = DsrQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["due_on", "pk"]
        indexes: ClassVar = [
            models.Index(fields=["organisation", "state", "due_on"], name="dsr_queue"),
            models.Index(fields=["organisation", "subject_email_bidx"], name="dsr_subject_email"),
            models.Index(fields=["organisation", "subject_phone_bidx"], name="dsr_subject_phone"),
        ]

    def __str__(self) -> str:
        return f"request {self.reference}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def platform_queue(self) -> bool:
        return self.organisation_id is None


class StepKind(models.TextChoices):
    RECEIVED = "received", "received"
    FORWARDED = "forwarded", "forwarded"
    SUBJECT_CONFIRMED = "subject_confirmed", "subject confirmed"
    CODE_SENT = "code_sent", "verification code sent"
    CODE_FAILED = "code_failed", "verification code wrong"
    VERIFIED = "verified", "identity verified"
    INFO_REQUESTED = "info_requested", "information asked for"
    INFO_RECEIVED = "info_received", "information received"
    EXTENDED = "extended", "deadline extended"
    DECIDED = "decided", "decided"
    EXECUTED = "executed", "carried out"
    VERIFICATION_RESULT = "erasure_verified", "erasure verified"
    RECIPIENT_NOTIFIED = "recipient_notified", "recipient notified"
    NOTICE_SENT = "notice_sent", "subject told"
    DOWNLOADED = "downloaded", "response downloaded"
    PUSHED = "pushed", "data sent to another controller"
    COMPLAINT_OPENED = "complaint_opened", "complaint opened"
    REMINDED = "reminded", "DPO reminded"
    NOTE = "note", "note"
    CLOSED = "closed", "closed"


class DsrStep(models.Model):
    """One thing that happened to a request: append-only (DSR-14), mirrored to the audit log.

    ``data`` holds ids, counts and codes, never a value of the subject's; ``note`` is what a
    person wrote (a reason, an attestation) and is encrypted because it may name someone."""

    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(DataSubjectRequest, on_delete=models.CASCADE, related_name="steps")
    kind = models.CharField(max_length=24, choices=StepKind.choices)
    at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=12)
    actor_id = models.CharField(max_length=64, blank=True)
    note = EncryptedTextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["at", "pk"]

    def __str__(self) -> str:
        return f"step {self.kind} of request {self.request_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        from carely.audit.models import AppendOnlyError

        if self.pk is not None and not kwargs.get("force_insert"):
            raise AppendOnlyError("Request steps are never changed.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class VerificationCode(models.Model):
    """A one-time code (DSR-3) sent to an address on file; only its hash is stored."""

    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(DataSubjectRequest, on_delete=models.CASCADE, related_name="codes")
    channel = models.CharField(max_length=8)  # email | sms
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"code {self.pk} of request {self.request_id}"


class AttachmentKind(models.TextChoices):
    ORIGINAL = "original", "the original request (letter, e-mail)"
    EVIDENCE = "evidence", "identity evidence for a staff attestation"
    INFORMATION = "information", "information the subject sent"


def dsr_attachment_path(instance: DsrAttachment, filename: str) -> str:
    org = instance.organisation_id or "platform"
    return f"dsr/{org}/{instance.request_id}/attachments/{timezone.now():%Y%m%d%H%M%S%f}"


class DsrAttachment(models.Model):
    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.CASCADE, related_name="attachments"
    )
    kind = models.CharField(max_length=12, choices=AttachmentKind.choices)
    stored_file = models.FileField(upload_to=dsr_attachment_path, max_length=255)
    original_name = EncryptedCharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"attachment {self.pk} ({self.kind})"


class ArtifactKind(models.TextChoices):
    ACCESS_ZIP = "access_zip", "access response (HTML + JSON, ZIP)"
    PORTABILITY_ZIP = "portability_zip", "portable data (JSON + CSV, ZIP)"
    EVIDENCE_PACK = "evidence_pack", "evidence pack (HTML + JSON, ZIP)"


def dsr_artifact_path(instance: DsrArtifact, filename: str) -> str:
    org = instance.organisation_id or "platform"
    return f"dsr/{org}/{instance.request_id}/{instance.kind}-{timezone.now():%Y%m%d%H%M%S%f}.zip"


class DsrArtifact(models.Model):
    """A file a request produced. The subject's copies (access, portability) hold personal data
    and are fetched by an expiring, access-logged link; the evidence pack holds none."""

    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.CASCADE, related_name="artifacts"
    )
    # The contact whose data the file holds: erasure finds earlier exports through it (DSR-9).
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=ArtifactKind.choices)
    stored_file = models.FileField(upload_to=dsr_artifact_path, max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # The download link's secret, hashed; the link itself is only ever in the notice.
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"


class NoticeKind(models.TextChoices):
    RECEIPT = "receipt", "receipt"
    VERIFICATION_CODE = "verification_code", "verification code"
    INFO_REQUEST = "info_request", "information asked for"
    EXTENSION = "extension", "extension and its reasons"
    DECISION = "decision", "decision"
    RESULT = "result", "result"
    FORWARDED = "forwarded", "forwarded to the clinic"


class NoticeStatus(models.TextChoices):
    QUEUED = "queued", "queued in the messaging core"
    SENT = "sent", "sent"
    STAFF_TO_SEND = "staff_to_send", "to be sent by staff (letter or phone)"
    STAFF_SENT = "staff_sent", "sent by staff"
    FAILED = "failed", "could not be sent"


class DsrNotice(models.Model):
    """What the subject was told, when, how and in which language (never the address)."""

    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(max_length=20, choices=NoticeKind.choices)
    channel = models.CharField(max_length=8, choices=ReplyChannel.choices)
    language = models.CharField(max_length=8)
    status = models.CharField(max_length=16, choices=NoticeStatus.choices)
    message_id = models.BigIntegerField(null=True, blank=True)  # messaging.Message, if queued there
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"notice {self.kind} of request {self.request_id}"


class RecipientNotification(models.Model):
    """DSR-12: one recipient the data was disclosed to, told of a rectification, erasure or
    restriction; ``outcome`` records what the recipient answered or what we did."""

    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(
        DataSubjectRequest, on_delete=models.CASCADE, related_name="recipient_notifications"
    )
    recipient = models.CharField(max_length=120)  # "infobip", "ses", "api_key:12", "push:host"
    recipient_kind = models.CharField(max_length=20)  # processor | api_client | controller
    action = models.CharField(max_length=20)  # rectification | erasure | restriction
    disclosures = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=20)  # notified | not_needed | failed
    detail = models.JSONField(default=dict, blank=True)
    notified_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.action} to {self.recipient}"


class PortabilityPush(models.Model):
    """DSR-7: the subject's portable data sent to another controller's HTTPS endpoint."""

    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    request = models.ForeignKey(DataSubjectRequest, on_delete=models.CASCADE, related_name="pushes")
    url = models.URLField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    bytes_sent = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=300, blank=True)
    pushed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"push {self.pk} of request {self.request_id}"
