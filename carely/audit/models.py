"""The audit log (SEC-4): append-only events, hash-chained per organisation.

Rows hold ids and keyed hashes only, never a name, e-mail or phone number, so erasing a data
subject never has to touch (and so never breaks) the chain. Each organisation has its own chain and
its own head row; writers of one clinic never wait for another clinic's, and an exit purge of one
tenant leaves every other chain intact. The platform's own events form the chain "platform".
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

from carely.orgs.scoping import OrganisationScopedQuerySet

PLATFORM_CHAIN = "platform"


def chain_key_for(organisation_id: int | None) -> str:
    return f"org:{organisation_id}" if organisation_id is not None else PLATFORM_CHAIN


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit row."""


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk update and delete are refused too; the exit purge deletes through its own permit."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events are never changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are never deleted.")


class ActorType(models.TextChoices):
    USER = "user", "user"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "system job"
    ANONYMOUS = "anonymous", "anonymous"


class AuditChainHead(models.Model):
    """The last link of one chain. Writers lock this row, so a chain never forks."""

    chain_key = models.CharField(max_length=40, unique=True)
    organisation = models.OneToOneField(
        "orgs.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")

    def __str__(self) -> str:
        return f"audit chain {self.chain_key} at {self.last_seq}"


class AuditEvent(models.Model):
    chain_key = models.CharField(max_length=40)
    seq = models.BigIntegerField()
    # Null for the platform's own chain (operators, platform DPO, sign-ins without a clinic).
    organisation = models.ForeignKey(
        "orgs.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=12, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["chain_key", "seq"], name="audit_event_chain_seq"),
        ]
        indexes: ClassVar = [
            models.Index(fields=["organisation", "occurred_at"], name="audit_event_org_time"),
            models.Index(fields=["object_type", "object_id"], name="audit_event_object"),
        ]
        ordering: ClassVar = ["chain_key", "seq"]

    def __str__(self) -> str:
        return f"{self.chain_key}#{self.seq} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None or not kwargs.get("force_insert", False):
            raise AppendOnlyError("Audit events are written once through audit_record().")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("Audit events are never deleted.")


class AccessAction(models.TextChoices):
    VIEW = "view", "viewed"
    EXPORT = "export", "exported"
    DOWNLOAD = "download", "downloaded"


class AccessPurpose(models.TextChoices):
    """Why a person opened a full record (CNT-3). A short list is easier to review than prose."""

    CARE = "care", "Care or appointment administration"
    PATIENT_REQUEST = "patient_request", "The patient asked for it"
    DATA_SUBJECT_REQUEST = "dsr", "Answering a data-subject request"
    LEGAL = "legal", "Legal obligation or claim"
    CORRECTION = "correction", "Correcting the record"
    ROUTINE = "routine", "Routine work (list or search)"
    API = "api", "Integration (API key)"


class AccessLogEntry(models.Model):
    """One view, export or download of a data subject's personal data (CNT-3).

    Holds ids, field names and a purpose code; the subject is referred to by type and id only.
    """

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_type = models.CharField(max_length=12, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    subject_type = models.CharField(max_length=40)
    subject_id = models.CharField(max_length=64)
    action = models.CharField(max_length=12, choices=AccessAction.choices)
    # Field names, or a document name such as "export.csv" / "file:123".
    what = models.JSONField(default=list)
    purpose = models.CharField(max_length=20, choices=AccessPurpose.choices)
    request_id = models.CharField(max_length=64, blank=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        indexes: ClassVar = [
            models.Index(
                fields=["organisation", "subject_type", "subject_id", "occurred_at"],
                name="access_log_subject",
            ),
            models.Index(
                fields=["organisation", "actor_id", "occurred_at"], name="access_log_actor"
            ),
        ]
        ordering: ClassVar = ["-occurred_at", "-pk"]

    def __str__(self) -> str:
        return (
            f"{self.actor_type} {self.actor_id} {self.action} {self.subject_type} {self.subject_id}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("Access log entries are written once.")
        super().save(*args, **kwargs)
