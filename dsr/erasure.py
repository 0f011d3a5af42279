"""Carrying out a granted erasure request (DSR-9) and proving that it worked.

``erasure_execute`` runs in one transaction, in this order:

1. cancel the subject's messages that no worker has claimed yet, so nothing goes out after;
2. if the subject objected to direct marketing or was on the suppression list, make sure a
   keyed-hash suppression entry for each of their addresses stays (CON-6): the only thing that
   may remain;
3. ``registry.erase``: every declared store (tables, message contents, files, earlier access and
   portability files), rows kept for a legal reason restricted and reported with it;
4. verify: collect the old id again, search every blind-index column and every digest column for
   the subject's digests (taken before erasing), and after the commit check that the stored files
   are gone from storage.

If anything of the subject would be left in the database, it raises ``ErasureIncomplete`` and the
transaction rolls back: nothing was erased, and the verification in the exception says what was
found (counts and model names only). Stored files are removed by the registry once the
transaction commits; their check runs on commit and is recorded as a second verification step.
Nothing returned or recorded holds a value of the subject: ids of rows are not even included,
only models, categories and counts.

The queries depend on the number of declared models and the subject's own rows, never on the
organisation's size: every lookup goes through the contact id or a blind-index digest, both
indexed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from carely.audit.context import Actor
from carely.privacy.erasure import KEYED_HASH_PREFIX
from carely.privacy.fields import BlindIndexField, blind_indexes
from carely.privacy.registry import Category, Erase, ModelEntry, Subject, registry
from consent.models import Objection as ConsentObjection
from consent.models import ObjectionKind, Source, SuppressionEntry, SuppressionReason
from consent.services import suppression_add
from contacts.models import Contact
from dsr.models import DataSubjectRequest, StepKind
from dsr.steps import dsr_step_add
from messaging.models import Message
from messaging.models import Status as MessageStatus
from messaging.receipts import UndeliverableAddress
from messaging.services import CANCELLABLE, MessageNotCancellable, message_cancel

log = logging.getLogger(__name__)

SUBJECT_KIND = "contact"
# The reason code a cancelled message carries in its timeline (a code, never free text).
CANCEL_REASON = "erased"

# Columns outside the blind indexes that hold the same digests (keyed_hash(normal form,
# purpose=kind)), with what a hit there means. The suppression list is the one store DSR-9 lets
# remain; a bounce record is operational and is removed with the subject (see _bounces_remove).
SUPPRESSION_LABEL = "consent.SuppressionEntry"
BOUNCES_LABEL = "messaging.UndeliverableAddress"


class ErasureInvalid(ValueError):
    """The request cannot be carried out as an erasure (no confirmed contact, wrong type)."""


class ErasureIncomplete(RuntimeError):
    """Something of the subject would be left; ``verification`` says what (counts, no values).

    Raised before the commit when the database still holds something (nothing was erased), or
    after it when a stored file could not be removed (the database part stands)."""

    def __init__(self, message: str, verification: dict[str, Any]) -> None:
        super().__init__(message)
        self.verification = verification


@dataclass(frozen=True)
class SubjectDigests:
    """The subject's blind-index digests per kind (email, phone, external_id), taken before the
    erasure removes the contact row that holds them."""

    by_kind: Mapping[str, str]

    @classmethod
    def of(cls, contact: Contact) -> SubjectDigests:
        values = {
            "email": contact.email_bidx,
            "phone": contact.phone_bidx,
            "external_id": contact.external_id_bidx,
        }
        return cls({kind: digest for kind, digest in values.items() if digest})

    def values(self) -> list[str]:
        return list(self.by_kind.values())


@dataclass
class Verification:
    """What is still there after an erasure, in counts only."""

    left: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> model -> rows
    kept_restricted: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppression_kept: int = 0
    files: int = 0
    files_left: int | None = None  # None until checked after the commit

    def add_left(self, category: str, label: str, rows: int) -> None:
        if rows:
            per_model = self.left.setdefault(category, {})
            per_model[label] = per_model.get(label, 0) + rows

    def add_kept(self, label: str, rows: int, reasons: Mapping[str, str]) -> None:
        if rows:
            kept = self.kept_restricted.setdefault(label, {"rows": 0, "legal_reasons": {}})
            kept["rows"] = max(kept["rows"], rows)
            kept["legal_reasons"].update(reasons)

    @property
    def database_passed(self) -> bool:
        return not any(self.left.values())

    @property
    def passed(self) -> bool:
        return self.database_passed and not self.files_left

    def as_dict(self) -> dict[str, Any]:
        categories = {str(c): 0 for c in _CATEGORIES}
        for category, per_model in self.left.items():
            categories[category] = sum(per_model.values())
        by_model: dict[str, int] = {}
        for per_model in self.left.values():
            for label, rows in per_model.items():
                by_model[label] = by_model.get(label, 0) + rows
        return {
            "left_by_category": categories,
            "left_by_model": dict(sorted(by_model.items())),
            "kept_restricted": self.kept_restricted,
            "suppression_kept": self.suppression_kept,
            "files": self.files,
            "files_left": self.files_left,
            "storage_checked": self.files_left is not None,
            "passed": self.passed if self.files_left is not None else self.database_passed,
        }


_CATEGORIES = [str(c) for c in Category]
# A row found by a blind index, in a model that declares no category for that index.
_BLIND_INDEX_CATEGORY = "contact"


# --- the steps of an erasure ----------------------------------------------------------------------


def _messages_cancel(contact: Contact) -> int:
    """Cancel every message of the subject that no worker has claimed (queued, deferred, held).
    A message a worker claimed meanwhile cannot be called back; the registry still empties it,
    and dispatch refuses a row whose contact is gone (``erased``)."""
    waiting = Message.objects.filter(
        organisation_id=contact.organisation_id, contact_id=contact.pk, status__in=CANCELLABLE
    ).only("pk", "organisation_id", "status")
    cancelled = 0
    for message in waiting:
        try:
            message_cancel(message=message, reason_code=CANCEL_REASON)
        except MessageNotCancellable:
            continue
        cancelled += 1
    return cancelled


def _suppression_keep(contact: Contact, digests: SubjectDigests) -> tuple[bool, int]:
    """CON-6: an objection to direct marketing outlives the erasure as keyed-hash suppression
    entries of the subject's addresses. Returns (whether the subject needed them, how many
    entries match the subject's digests now)."""
    organisation = contact.organisation
    objected = ConsentObjection.objects.filter(
        contact_id=contact.pk, kind=ObjectionKind.DIRECT_MARKETING
    ).exists()
    existing = SuppressionEntry.objects.filter(
        organisation_id=contact.organisation_id, digest__in=digests.values()
    )
    listed = existing.exists()
    if not (objected or listed):
        return False, 0
    if not digests.by_kind:
        return True, 0  # no address to keep a hash of: nothing can be matched again anyway
    suppression_add(
        organisation=organisation,
        email=contact.email or "",
        phone=contact.phone or "",
        external_id=contact.external_id or "",
        source=Source.SYSTEM,
        reason=SuppressionReason.OBJECTION if objected else SuppressionReason.REQUEST,
    )
    return True, _suppression_count(contact.organisation_id, digests)


def _suppression_count(organisation_id: int, digests: SubjectDigests) -> int:
    kinds = Q()
    for kind, digest in digests.by_kind.items():
        kinds |= Q(kind=kind, digest=digest)
    if not digests.by_kind:
        return 0
    return SuppressionEntry.objects.filter(kinds, organisation_id=organisation_id).count()


def _bounces_remove(organisation_id: int, digests: SubjectDigests) -> int:
    """A permanent bounce is recorded under the address's blind-index digest with no contact id
    (messaging.UndeliverableAddress). It would let the erased address be recognised again, and
    DSR-9 lets only the suppression list do that, so it goes with the subject: a re-imported
    contact with the same address bounces once more and is recorded again."""
    kinds = [k for k in ("email", "phone") if k in digests.by_kind]
    if not kinds:
        return 0
    query = Q()
    for kind in kinds:
        query |= Q(kind=kind, digest=digests.by_kind[kind])
    deleted, _ = UndeliverableAddress.objects.filter(
        query, organisation_id=organisation_id
    ).delete()
    return deleted


def _stored_files(subject: Subject) -> list[tuple[Any, str]]:
    """(storage, name) of every stored file the registry reaches for the subject."""
    from carely.privacy.collect import subject_entries, subject_queryset

    found: list[tuple[Any, str]] = []
    for entry, reach in subject_entries(registry, subject):
        files = [f for f in entry.fields_for(subject.kind) if f.is_file]
        if not files:
            continue
        qs = subject_queryset(entry, reach, subject)
        for row in qs.values_list(*[f.field.attname for f in files]):
            for entry_field, name in zip(files, row, strict=True):
                if name:
                    found.append((entry_field.field.storage, name))  # type: ignore[attr-defined]
    return found


# --- verification ----------------------------------------------------------------------------


def _empty_or_hashed(value: Any) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return True
    return isinstance(value, str) and value.startswith(KEYED_HASH_PREFIX)


def _collected_check(
    subject: Subject, found: Mapping[str, list[dict[str, Any]]], v: Verification
) -> None:
    """Rows the registry still reaches for the old id: kept-restricted fields are listed with
    their legal reason; any other field must be empty or a keyed hash, and a row of a model whose
    rows erasure deletes must not be there at all."""
    for label, rows in found.items():
        entry = registry.entry(label)
        assert entry is not None
        fields = entry.fields_for(subject.kind)
        kept = {f"{label}.{f.name}": f.personal.legal_reason for f in fields if _kept(f)}
        deletes = any(f.personal.erase is Erase.DELETE_ROW for f in fields)
        for row in rows:
            for f in fields:
                name = f.export_name
                if _kept(f) or name is None:
                    continue
                if deletes or not _empty_or_hashed(row.get(name)):
                    v.add_left(str(f.personal.category), label, 1)
                    break
        if kept and not deletes:
            v.add_kept(label, len(rows), kept)


def _kept(entry_field: Any) -> bool:
    return bool(entry_field.personal.erase is Erase.KEEP_RESTRICTED)


def _blind_index_models() -> list[tuple[type[models.Model], dict[str, BlindIndexField]]]:
    found = []
    for model in apps.get_models():
        indexes = blind_indexes(model)
        if indexes:
            found.append((model, indexes))
    return found


def _blind_index_check(organisation_id: int, digests: SubjectDigests, v: Verification) -> None:
    """Search every blind-index column of every installed model for the subject's digests, in the
    subject's organisation. A hit is kept (restricted) only where the registry declares that
    index ``keep_restricted`` and the value it indexes was erased (empty or a keyed hash), as on
    an answered request's own row; anywhere else the subject is still there."""
    if not digests.by_kind:
        return
    for model, indexes in _blind_index_models():
        query = Q()
        for index in indexes.values():
            digest = digests.by_kind.get(index.kind)
            if digest:
                query |= Q(**{index.attname: digest})
        if not query:
            continue
        qs = model._base_manager.filter(query)
        if any(f.name == "organisation" for f in model._meta.concrete_fields):
            qs = qs.filter(organisation_id=organisation_id)
        entry = registry.entry(model)
        label = model._meta.label
        sources = list(indexes)
        hits = list(qs.values_list("pk", *[indexes[s].attname for s in sources]))
        if not hits:
            continue
        # Decrypt only the few rows hit, to see whether their indexed values were erased.
        values = {row.pk: row for row in model._base_manager.filter(pk__in=[h[0] for h in hits])}
        kept_rows = 0
        reasons: dict[str, str] = {}
        for pk, *row_digests in hits:
            row_left = False
            for source, digest in zip(sources, row_digests, strict=True):
                index = indexes[source]
                if digest != digests.by_kind.get(index.kind):
                    continue
                declared = _declared(entry, index.name)
                source_value = getattr(values[pk], source)
                if declared is not None and _kept(declared) and _empty_or_hashed(source_value):
                    reasons[f"{label}.{index.name}"] = declared.personal.legal_reason
                    continue
                category = str(declared.personal.category) if declared else _BLIND_INDEX_CATEGORY
                v.add_left(category, label, 1)
                row_left = True
                break
            if not row_left:
                kept_rows += 1
        v.add_kept(label, kept_rows, reasons)


def _declared(entry: ModelEntry | None, name: str) -> Any:
    if entry is None:
        return None
    return next((f for f in entry.fields_for(SUBJECT_KIND) if f.name == name), None)


def _digest_columns_check(organisation_id: int, digests: SubjectDigests, v: Verification) -> None:
    if not digests.by_kind:
        return
    v.suppression_kept = _suppression_count(organisation_id, digests)
    bounces = UndeliverableAddress.objects.filter(
        organisation_id=organisation_id, digest__in=digests.values()
    ).count()
    v.add_left(_BLIND_INDEX_CATEGORY, BOUNCES_LABEL, bounces)


def erasure_verify(
    subject: Subject, digests: SubjectDigests, *, files: list[tuple[Any, str]] | None = None
) -> Verification:
    """Prove the subject is gone from the database: what ``registry.collect`` still reaches for the
    old id, and every blind-index and digest column searched for the old digests. ``files`` (taken
    before erasing) are checked in storage when given; leave them out while the removal waits for
    the commit."""
    assert subject.organisation_id is not None
    v = Verification()
    _collected_check(subject, registry.collect(subject), v)
    _blind_index_check(subject.organisation_id, digests, v)
    _digest_columns_check(subject.organisation_id, digests, v)
    if files is not None:
        v.files = len(files)
        v.files_left = _files_left(files)
    return v


def _files_left(files: list[tuple[Any, str]]) -> int:
    return sum(1 for storage, name in files if storage.exists(name))


# --- the service ----------------------------------------------------------------------------------


def erasure_execute(request: DataSubjectRequest, *, actor: Actor) -> dict[str, Any]:
    """Erase the request's confirmed contact (DSR-9) and verify it; see the module docstring.

    Returns counts only: ``erased`` (``ErasureReport.as_dict()``), ``messages_cancelled``,
    ``suppression`` (kept: bool, entries: int), ``bounces_removed`` and ``verification``.
    Raises ``ErasureInvalid`` for a request without a confirmed contact of its organisation, and
    ``ErasureIncomplete`` when something would be left (nothing changed in the database then).
    """
    contact = _subject_contact(request)
    subject = Subject(SUBJECT_KIND, contact.organisation_id, contact.pk)
    digests = SubjectDigests.of(contact)
    with transaction.atomic():
        # Lock the contact so an edit or import cannot change it while it is erased.
        Contact._base_manager.select_for_update().filter(pk=contact.pk).first()
        cancelled = _messages_cancel(contact)
        in_flight = Message.objects.filter(
            organisation_id=contact.organisation_id,
            contact_id=contact.pk,
            status=MessageStatus.SENDING,
        ).count()
        needed, _entries = _suppression_keep(contact, digests)
        bounces = _bounces_remove(contact.organisation_id, digests)
        files = _stored_files(subject)
        import_files = _import_files_remove(contact)
        report = registry.erase(subject, dry_run=False)
        verification = erasure_verify(subject, digests)
        verification.files = len(files)
        if not verification.database_passed:
            raise ErasureIncomplete(
                "The erasure would leave data of the subject in "
                f"{', '.join(sorted(verification.as_dict()['left_by_model']))}; nothing was "
                "erased. Erase or merge those records first (a duplicate contact with the same "
                "address is a separate record), then carry out the request again.",
                verification.as_dict(),
            )
        result: dict[str, Any] = {
            "erased": report.as_dict(),
            "messages_cancelled": cancelled,
            "messages_in_flight": in_flight,
            "suppression": {"kept": needed, "entries": verification.suppression_kept},
            "bounces_removed": bounces,
            "import_files_removed": import_files,
            "verification": verification.as_dict(),
        }
        dsr_step_add(
            request,
            StepKind.VERIFICATION_RESULT,
            actor=actor,
            data={"stage": "database", **_step_data(verification)},
        )
        # Registered after the registry's own file removals, so it runs after them.
        transaction.on_commit(
            lambda: _storage_verify(request, files, verification, result, actor=actor)
        )
    if result["verification"]["storage_checked"] and not result["verification"]["passed"]:
        raise ErasureIncomplete(
            f"{verification.files_left} stored file(s) of the subject could not be removed from "
            "storage; the database part of the erasure stands. Remove them (the step records "
            "how many) and verify again.",
            result["verification"],
        )
    return result


def _import_files_remove(contact: Contact) -> int:
    """Contact-list files still stored from imports (the rejected rows, kept a few days so the
    clinic can fix them; an upload not yet started) are not rows the registry reaches: a file
    that names the subject (e-mail, phone or external id, as written in a CSV) is deleted with
    the erasure, and the job keeps its counts. Running imports are left alone; they end within
    minutes and delete their upload themselves."""
    from django.core.files.storage import default_storage

    from contacts.models import ImportJob, ImportState

    needles = [
        value.strip().lower().encode()
        for value in (contact.email, contact.external_id)
        if value and len(value.strip()) >= 3
    ]
    if contact.phone:
        digits = contact.phone.lstrip("+")
        # +38641123456 is written 041 123 456, 041123456 or 38641123456 in spreadsheets.
        needles += [contact.phone.encode(), digits.encode(), ("0" + digits[3:]).encode()]
    if not needles:
        return 0
    jobs = ImportJob.objects.filter(
        organisation_id=contact.organisation_id, files_purged_at__isnull=True
    ).exclude(state=ImportState.RUNNING)
    removed = 0
    for job in jobs.only("pk", "upload", "rejected_file"):
        names = [name for name in (job.upload.name, job.rejected_file.name) if name]
        hit = False
        for name in names:
            try:
                with default_storage.open(name, "rb") as stream:
                    text = stream.read().lower()
            except OSError:
                continue
            flat = text.replace(b" ", b"").replace(b"-", b"")
            if any(n in text or n.replace(b" ", b"") in flat for n in needles):
                hit = True
                break
        if not hit:
            continue
        for name in names:
            transaction.on_commit(partial(default_storage.delete, name))
        ImportJob.objects.filter(pk=job.pk).update(
            upload="", rejected_file="", files_purged_at=timezone.now()
        )
        removed += 1
    return removed


def _subject_contact(request: DataSubjectRequest) -> Contact:
    if request.organisation_id is None:
        raise ErasureInvalid(
            f"Request {request.reference} is in the platform queue; forward it to the clinic "
            "that holds the patient's data, which erases it there."
        )
    # The workflow sets ``contact`` only once the subject is matched to exactly one contact or
    # the DPO confirmed one; which of the two is the workflow's business.
    if request.contact_id is None:
        raise ErasureInvalid(
            f"Request {request.reference} has no confirmed contact; confirm which contact it is "
            "about before erasing."
        )
    contact = Contact._base_manager.filter(
        pk=request.contact_id, organisation_id=request.organisation_id
    ).first()
    if contact is None:
        raise ErasureInvalid(
            f"The contact of request {request.reference} is not in its organisation."
        )
    return contact


def _step_data(v: Verification) -> dict[str, Any]:
    data = v.as_dict()
    return {
        "left_by_category": data["left_by_category"],
        "left_by_model": data["left_by_model"],
        "kept_restricted": {label: kept["rows"] for label, kept in v.kept_restricted.items()},
        "suppression_kept": v.suppression_kept,
        "files": v.files,
        "files_left": v.files_left,
        "passed": data["passed"],
    }


def _storage_verify(
    request: DataSubjectRequest,
    files: list[tuple[Any, str]],
    verification: Verification,
    result: dict[str, Any],
    *,
    actor: Actor,
) -> None:
    """After the commit: the registry has removed the files; check each is gone, retry once
    those that are not, and record the outcome as the second verification step."""
    left = [(storage, name) for storage, name in files if storage.exists(name)]
    for storage, name in left:
        try:
            storage.delete(name)
        except Exception:  # storage errors vary by backend; the count below records the outcome
            log.exception("dsr erasure: a stored file of request %s stays", request.pk)
    verification.files_left = _files_left(left)
    result["verification"] = verification.as_dict()
    dsr_step_add(
        request,
        StepKind.VERIFICATION_RESULT,
        actor=actor,
        data={
            "stage": "storage",
            "files": len(files),
            "files_left": verification.files_left,
            "passed": verification.passed,
        },
    )
