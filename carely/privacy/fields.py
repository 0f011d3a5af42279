"""Encrypted model fields and blind indexes (SEC-8, ADR 4).

``EncryptedCharField`` and friends keep the plaintext in Python and AES-GCM ciphertext (text) in
the database; the ciphertext is bound to its table and column. Nothing can be searched inside a
ciphertext, so every lookup except ``isnull`` is refused; equality goes through a blind index::

    class Patient(BlindIndexed, models.Model):
        email = EncryptedCharField(max_length=254, blank=True)
        email_bidx = BlindIndexField(source="email", kind="email")

        objects = BlindIndexQuerySet.as_manager()

    Patient.objects.filter_blind(email="A@B.si")
    Patient.objects.filter_blind(phone="041 123 456", region="SI")

The blind index is filled in ``pre_save``, which ``save()`` and ``bulk_create()`` both call.
``QuerySet.update()`` does not: set the index yourself there (or save the rows). ``BlindIndexed``
adds the index to ``save(update_fields=[...])`` when its source is in the list.
Empty strings are stored as empty strings (a ciphertext's length shows emptiness anyway).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import FieldError
from django.db import models

from carely.lib.keyed_hash import COMPACT_LENGTH, keyed_hash
from carely.lib.normalise import normalise_email, normalise_external_id, normalise_phone
from carely.privacy.crypto import associated_data, decrypt, encrypt

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

NORMALISERS: dict[str, Callable[..., str]] = {
    "email": normalise_email,
    "phone": normalise_phone,
    "external_id": normalise_external_id,
}


class EncryptedLookupRefused(FieldError):
    """A query tried to compare inside an encrypted column."""


class EncryptedFieldMixin:
    """Shared by the encrypted fields: a text column, encrypted on the way in, decrypted out."""

    encrypted = True
    name: str
    column: str
    model: type[models.Model]
    _aad_cache: bytes | None = None

    def get_internal_type(self) -> str:
        return "TextField"

    def aad(self) -> bytes:
        if self._aad_cache is None:
            self._aad_cache = associated_data(self.model._meta.db_table, self.column)
        return self._aad_cache

    def to_text(self, value: Any) -> str:
        return str(value)

    def from_text(self, text: str) -> Any:
        return text

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return self.from_text(decrypt(value, self.aad()))

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value.__class__ is str:  # the common case, without the generic conversions
            return encrypt(value, self.aad()) if value else ""
        if not prepared:
            value = self.get_prep_value(value)  # type: ignore[attr-defined]
        if value is None:
            return None
        text = self.to_text(value)
        if text == "":
            return ""
        return encrypt(text, self.aad())

    def _refuse(self, lookup_name: str) -> EncryptedLookupRefused:
        label = f"{self.model._meta.label}.{self.name}"
        return EncryptedLookupRefused(
            f"{label} is encrypted; the database cannot compare inside it ({lookup_name!r}). "
            "For equality use its blind index (Model.objects.filter_blind(...)); only isnull "
            "works on the column itself."
        )

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)  # type: ignore[misc]
        raise self._refuse(lookup_name)

    def get_transform(self, lookup_name: str) -> Any:
        raise self._refuse(lookup_name)


class EncryptedTextField(EncryptedFieldMixin, models.TextField):  # type: ignore[misc]
    pass


class EncryptedCharField(EncryptedFieldMixin, models.CharField):  # type: ignore[misc]
    """``max_length`` limits the plaintext (forms and full_clean); the column is TEXT."""


class EncryptedDateField(EncryptedFieldMixin, models.DateField):  # type: ignore[misc]
    def to_text(self, value: Any) -> str:
        return value.isoformat()

    def from_text(self, text: str) -> dt.date:
        return dt.date.fromisoformat(text)


class BlindIndexField(models.CharField):
    """HMAC of the normalised value of ``source`` (``kind``: email, phone, external_id)."""

    def __init__(self, *args: Any, source: str, kind: str, **kwargs: Any) -> None:
        if kind not in NORMALISERS:
            raise ValueError(f"BlindIndexField kind must be one of {sorted(NORMALISERS)}")
        self.source = source
        self.kind = kind
        kwargs.setdefault("max_length", COMPACT_LENGTH)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, kind=self.kind)
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def digest(self, value: Any, *, region: str | None = None) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        text = str(value)
        if self.kind == "phone":
            # Text already in E.164 shape is its own normal form: a valid number has exactly one
            # E.164 spelling, and services validate numbers where they enter. Skipping the parse
            # saves ~25 us per row on imports (bench/encryption.py).
            text = text if _E164.match(text) else normalise_phone(text, region)
        else:
            text = NORMALISERS[self.kind](text)
        return keyed_hash(text, purpose=self.kind)

    def pre_save(self, model_instance: models.Model, add: bool) -> str | None:
        value = self.digest(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value


def blind_indexes(model: type[models.Model]) -> dict[str, BlindIndexField]:
    """``{source field name: its blind index field}`` of a model."""
    return {f.source: f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField)}


def encrypted_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if getattr(f, "encrypted", False)]


class BlindIndexQuerySet(models.QuerySet[Any]):
    def filter_blind(self, *, region: str | None = None, **values: Any) -> BlindIndexQuerySet:
        """Equality on encrypted fields through their blind indexes: ``filter_blind(email=...)``.

        ``region`` reads national phone forms ("041 123 456" with "SI").
        """
        indexes = blind_indexes(self.model)
        lookups: dict[str, Any] = {}
        for source, value in values.items():
            index = indexes.get(source)
            if index is None:
                raise FieldError(
                    f"{self.model._meta.label}.{source} has no blind index; add a "
                    f"BlindIndexField(source={source!r}, kind=...) to look it up by equality"
                )
            digest = index.digest(value, region=region)
            lookups[index.attname + ("__isnull" if digest is None else "")] = digest or True
        return self.filter(**lookups)


class BlindIndexed(models.Model):
    """Keeps blind indexes in step on ``save(update_fields=...)``."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields: Iterable[str] | None = kwargs.get("update_fields")
        if update_fields is not None:
            fields = set(update_fields)
            for source, index in blind_indexes(type(self)).items():
                if source in fields:
                    fields.add(index.name)
            kwargs["update_fields"] = fields
        super().save(*args, **kwargs)
