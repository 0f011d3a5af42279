"""``registry.collect(subject)``: every row of one data subject, grouped by model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.db import models

from carely.orgs.scoping import MissingOrganisation

if TYPE_CHECKING:
    from carely.privacy.registry import ModelEntry, Reach, Registry, Subject


def subject_queryset(entry: ModelEntry, reach: Reach, subject: Subject) -> models.QuerySet[Any]:
    """The rows of ``entry`` that belong to ``subject``, never across organisations.

    An organisation's subject reaches only rows of that organisation, and never rows the platform
    holds as controller (``organisation=None`` reaches). A platform subject (no organisation) is
    allowed only for platform kinds and reaches that person's rows everywhere.
    """
    qs = entry.model._base_manager.filter(**{reach.path: subject.id}, **dict(reach.where))
    if subject.organisation_id is not None:
        if reach.organisation is None:
            return qs.none()
        return qs.filter(**{reach.organisation: subject.organisation_id})
    return qs


def check_subject(registry: Registry, subject: Subject) -> None:
    kind = registry.kind(subject.kind)
    if subject.organisation_id is None and not kind.platform:
        raise MissingOrganisation(
            f"a {subject.kind!r} subject belongs to one organisation; give its organisation_id"
        )


def subject_entries(registry: Registry, subject: Subject) -> Iterator[tuple[ModelEntry, Reach]]:
    for entry in registry.entries():
        reach = entry.reach_for(subject.kind)
        if reach is not None and entry.fields_for(subject.kind):
            yield entry, reach


def export_value(instance: models.Model, field: models.Field[Any, Any]) -> Any:
    if field.many_to_many:
        return sorted(getattr(instance, field.name).values_list("pk", flat=True))
    value = getattr(instance, field.attname)
    if isinstance(field, models.FileField):
        return value.name if value else None
    return value


def collect(registry: Registry, subject: Subject) -> dict[str, list[dict[str, Any]]]:
    """``{"app.Model": [{"id": ..., column: value, ...}, ...]}`` for one subject; files appear
    as their stored names (fetch them through the storage)."""
    check_subject(registry, subject)
    found: dict[str, list[dict[str, Any]]] = {}
    for entry, reach in subject_entries(registry, subject):
        fields = [(f.export_name, f.field) for f in entry.fields_for(subject.kind) if f.export_name]
        rows = [
            {"id": obj.pk, **{name: export_value(obj, fld) for name, fld in fields}}
            for obj in subject_queryset(entry, reach, subject).order_by("pk")
        ]
        if rows:
            found[entry.label] = rows
    return found
