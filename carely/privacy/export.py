"""``registry.export(...)``: the writers shared by DSR access, portability and the exit export.

Rows are read with ``QuerySet.iterator(chunk_size=...)`` and written as they come, so an
organisation's whole data set never sits in memory. Two formats:

- JSON: ``{"format": "carely-export/1", "scope": ..., "portability": ..., "models":
  {"app.Model": [{"id": 1, column: value, ...}, ...], ...}}``
- CSV: one long table ``model,row_id,column,value``: every model fits one file without a header
  per model, and a spreadsheet can pivot it. Every cell passes ``safe_cell`` (formula injection).

``portability=True`` keeps only fields declared ``provided_by_subject`` (DSR-7).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from carely.lib.safe_csv import safe_cell
from carely.privacy.collect import check_subject, export_value, subject_entries, subject_queryset

if TYPE_CHECKING:
    from carely.orgs.models import Organisation
    from carely.privacy.registry import FieldEntry, ModelEntry, Registry, Subject

FORMAT = "carely-export/1"
FORMATS = ("json", "csv")


def _columns(fields: tuple[FieldEntry, ...], portability: bool) -> list[tuple[str, Any]]:
    return [
        (f.export_name, f.field)
        for f in fields
        if f.export_name and (f.personal.provided_by_subject or not portability)
    ]


def _sources(
    registry: Registry, scope: Subject | Organisation, portability: bool
) -> Iterator[tuple[ModelEntry, models.QuerySet[Any], list[tuple[str, Any]]]]:
    from carely.privacy.registry import Subject

    if isinstance(scope, Subject):
        check_subject(registry, scope)
        for entry, reach in subject_entries(registry, scope):
            columns = _columns(entry.fields_for(scope.kind), portability)
            if columns:
                yield entry, subject_queryset(entry, reach, scope), columns
        return
    if getattr(scope, "pk", None) is None:
        from carely.orgs.scoping import MissingOrganisation

        raise MissingOrganisation("export needs a subject or a saved organisation")
    for entry in sorted(registry.entries(), key=lambda e: e.label):
        org_path = next((r.organisation for r in entry.reaches if r.organisation), None)
        columns = _columns(entry.fields, portability)
        if org_path and columns:
            yield entry, entry.model._base_manager.filter(**{org_path: scope.pk}), columns


def _rows(
    qs: models.QuerySet[Any], columns: list[tuple[str, Any]], chunk_size: int
) -> Iterator[dict[str, Any]]:
    for obj in qs.order_by("pk").iterator(chunk_size=chunk_size):
        yield {"id": obj.pk, **{name: export_value(obj, fld) for name, fld in columns}}


def _scope_description(scope: Subject | Organisation) -> dict[str, Any]:
    from carely.privacy.registry import Subject

    if isinstance(scope, Subject):
        return {"subject_kind": scope.kind, "organisation_id": scope.organisation_id}
    return {"organisation_id": scope.pk}


def iter_export(
    registry: Registry,
    scope: Subject | Organisation,
    *,
    format: str = "json",
    portability: bool = False,
    chunk_size: int = 2000,
) -> Iterator[str]:
    """The export as text pieces, for a file or a StreamingHttpResponse."""
    if format not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}, got {format!r}")
    sources = _sources(registry, scope, portability)
    if format == "csv":
        yield from _csv(sources, chunk_size)
    else:
        yield from _json(scope, sources, portability, chunk_size)


def _json(
    scope: Subject | Organisation,
    sources: Iterator[tuple[ModelEntry, models.QuerySet[Any], list[tuple[str, Any]]]],
    portability: bool,
    chunk_size: int,
) -> Iterator[str]:
    def dump(value: Any) -> str:
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)

    head = {"format": FORMAT, "scope": _scope_description(scope), "portability": portability}
    yield dump(head)[:-1] + ', "models": {'
    first_model = True
    for entry, qs, columns in sources:
        first_row = True
        for row in _rows(qs, columns, chunk_size):
            if first_row:
                yield ("" if first_model else "],") + f"\n{dump(entry.label)}: [\n"
                first_model = first_row = False
            else:
                yield ",\n"
            yield dump(row)
    yield ("" if first_model else "]") + "}}\n"


class _Line:
    def write(self, value: str) -> str:
        return value


def _csv(
    sources: Iterator[tuple[ModelEntry, models.QuerySet[Any], list[tuple[str, Any]]]],
    chunk_size: int,
) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(["model", "row_id", "column", "value"])
    for entry, qs, columns in sources:
        for row in _rows(qs, columns, chunk_size):
            row_id = row["id"]
            for name, _field in columns:
                value = row[name]
                if isinstance(value, list | dict):
                    value = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
                elif hasattr(value, "isoformat"):
                    value = value.isoformat()
                yield writer.writerow([entry.label, row_id, safe_cell(name), safe_cell(value)])


def export(
    registry: Registry,
    scope: Subject | Organisation,
    stream: TextIO,
    *,
    format: str,
    portability: bool,
    chunk_size: int,
) -> int:
    """Write the export to ``stream``; returns the number of characters written."""
    written = 0
    for piece in iter_export(
        registry, scope, format=format, portability=portability, chunk_size=chunk_size
    ):
        stream.write(piece)
        written += len(piece)
    return written
