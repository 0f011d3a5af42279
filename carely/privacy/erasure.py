"""``registry.erase(subject, dry_run=...)``: every declared store of one subject, in one go.

Everything happens in one transaction: updates first (null, keyed hash, restriction mark), then
row deletions children-first so foreign keys never point at a deleted row. A dry run performs the
same statements and rolls them back, so its counts are exactly what a real run would do. Stored
files are removed from storage only after the transaction commits.

If deleting a row would cascade into a model the registry does not mark ``delete_row`` for this
subject kind, the erasure stops and rolls back (``ErasureConflict``): the declarations and the
``on_delete`` rules disagree, and guessing would either lose kept records or leave data behind.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.utils import timezone

from carely.lib.keyed_hash import keyed_hash
from carely.lib.normalise import InvalidPhoneNumber, normalise_phone
from carely.privacy.collect import check_subject, subject_entries, subject_queryset
from carely.privacy.fields import NORMALISERS

if TYPE_CHECKING:
    from carely.privacy.registry import FieldEntry, ModelEntry, Reach, Registry, Subject

KEYED_HASH_PREFIX = "kh1:"


class ErasureConflict(RuntimeError):
    """Declarations and on_delete rules disagree; nothing was changed."""


@dataclass
class ErasureReport:
    """Counts per model (rows) and per category (field values); never a value or a subject id."""

    subject_kind: str
    dry_run: bool
    by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    kept_for: dict[str, str] = field(default_factory=dict)
    files_removed: int = 0

    def count(self, label: str, action: str, rows: int, fields: list[FieldEntry]) -> None:
        if rows == 0:
            return
        model_counts = self.by_model.setdefault(label, {})
        model_counts[action] = model_counts.get(action, 0) + rows
        for entry in fields:
            per_category = self.by_category.setdefault(str(entry.personal.category), {})
            per_category[action] = per_category.get(action, 0) + rows

    @property
    def total_rows(self) -> int:
        return sum(sum(counts.values()) for counts in self.by_model.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_kind": self.subject_kind,
            "dry_run": self.dry_run,
            "by_model": self.by_model,
            "by_category": self.by_category,
            "kept_for": self.kept_for,
            "files_removed": self.files_removed,
        }


def hashed_value(entry: FieldEntry, value: Any) -> Any:
    """The keyed hash that replaces a value (normalised as its blind index or suppression entry
    would be, so the two can be compared). Already hashed values stay as they are."""
    if value is None or value == "" or str(value).startswith(KEYED_HASH_PREFIX):
        return value
    purpose = entry.personal.hash_purpose or entry.name
    text = str(value)
    if purpose == "phone":
        with contextlib.suppress(InvalidPhoneNumber):
            text = normalise_phone(text)
    elif purpose in NORMALISERS:
        text = NORMALISERS[purpose](text)
    return KEYED_HASH_PREFIX + keyed_hash(text, purpose=purpose)


def _empty(model_field: models.Field[Any, Any]) -> Any:
    return None if model_field.null else ""


def _file_names(qs: models.QuerySet[Any], fields: list[FieldEntry]) -> list[tuple[Any, str]]:
    files = [f for f in fields if f.is_file]
    if not files:
        return []
    names: list[tuple[Any, str]] = []
    for row in qs.values_list(*[f.field.attname for f in files]):
        for entry, name in zip(files, row, strict=True):
            if name:
                names.append((entry.field, name))
    return names


def _remove_files_on_commit(names: list[tuple[Any, str]], report: ErasureReport) -> None:
    for model_field, name in names:
        storage = model_field.storage
        transaction.on_commit(partial(storage.delete, name))
    report.files_removed += len(names)


def _update(entry: ModelEntry, reach: Reach, subject: Subject, report: ErasureReport) -> None:
    from carely.privacy.registry import Erase

    qs = subject_queryset(entry, reach, subject)
    fields = list(entry.fields_for(subject.kind))
    by_action: dict[Erase, list[FieldEntry]] = defaultdict(list)
    for f in fields:
        by_action[f.personal.erase].append(f)
    rows = qs.count()
    if rows == 0:
        return

    nulls = by_action[Erase.NULL]
    if nulls:
        _remove_files_on_commit(_file_names(qs, nulls), report)
        plain = {f.field.attname: _empty(f.field) for f in nulls if not f.field.many_to_many}
        if plain:
            qs.update(**plain)
        for f in nulls:
            if f.field.many_to_many:
                for obj in qs:
                    getattr(obj, f.name).clear()
        report.count(entry.label, "nulled", rows, nulls)

    hashes = by_action[Erase.KEYED_HASH]
    if hashes:
        attnames = [f.field.attname for f in hashes]
        for pk, *values in qs.values_list("pk", *attnames):
            changes = {
                f.field.attname: hashed_value(f, v) for f, v in zip(hashes, values, strict=True)
            }
            entry.model._base_manager.filter(pk=pk).update(**changes)
        report.count(entry.label, "hashed", rows, hashes)

    kept = by_action[Erase.KEEP_RESTRICTED]
    if kept:
        if entry.restricted_flag:
            qs.filter(**{f"{entry.restricted_flag}__isnull": True}).update(
                **{entry.restricted_flag: timezone.now()}
            )
        report.count(entry.label, "kept_restricted", rows, kept)
        for f in kept:
            report.kept_for[f"{entry.label}.{f.name}"] = f.personal.legal_reason


def _children_first(plan: list[tuple[ModelEntry, Reach]]) -> list[tuple[ModelEntry, Reach]]:
    """Order deletions so a model goes before every model it points at."""
    pending = list(plan)
    ordered: list[tuple[ModelEntry, Reach]] = []
    while pending:
        for candidate in pending:
            others = {e.model for e, _ in pending if e is not candidate[0]}
            pointed_at_by_others = any(
                f.related_model is candidate[0].model
                for other in others
                for f in other._meta.concrete_fields
                if f.is_relation
            )
            if not pointed_at_by_others:
                break
        else:  # a cycle: fall back to declaration order, the collector handles the rest
            candidate = pending[0]
        pending.remove(candidate)
        ordered.append(candidate)
    return ordered


def _delete(
    entry: ModelEntry,
    reach: Reach,
    subject: Subject,
    report: ErasureReport,
    allowed: set[str],
) -> None:
    qs = subject_queryset(entry, reach, subject)
    fields = list(entry.fields_for(subject.kind))
    _remove_files_on_commit(_file_names(qs, fields), report)
    _total, per_model = qs.delete()
    for label, rows in per_model.items():
        if rows == 0:
            continue
        if label == entry.label:
            report.count(label, "deleted", rows, fields)
            continue
        model = _label_model(label)
        if model is not None and model._meta.auto_created:
            continue  # many-to-many link rows of a deleted row
        if label not in allowed:
            raise ErasureConflict(
                f"deleting {entry.label} rows also deletes {rows} {label} row(s), which the "
                f"registry does not mark delete_row for {subject.kind!r} subjects; fix the "
                "declaration or the on_delete rule. Nothing was erased."
            )
        report.by_model.setdefault(label, {}).setdefault("deleted", 0)
        report.by_model[label]["deleted"] += rows


def _label_model(label: str) -> type[models.Model] | None:
    from django.apps import apps

    try:
        return apps.get_model(label)
    except LookupError:
        return None


def erase(registry: Registry, subject: Subject, *, dry_run: bool) -> ErasureReport:
    from carely.privacy.registry import Erase

    check_subject(registry, subject)
    report = ErasureReport(subject_kind=subject.kind, dry_run=dry_run)
    plan = list(subject_entries(registry, subject))
    deletes = [
        (e, r)
        for e, r in plan
        if any(f.personal.erase is Erase.DELETE_ROW for f in e.fields_for(subject.kind))
    ]
    updates = [(e, r) for e, r in plan if (e, r) not in deletes]
    allowed = {e.label for e, _ in deletes}
    with transaction.atomic():
        for entry, reach in updates:
            _update(entry, reach, subject, report)
        for entry, reach in _children_first(deletes):
            _delete(entry, reach, subject, report, allowed)
        if dry_run:
            transaction.set_rollback(True)
    return report
