"""The personal-data registry (ADR 5): one place that knows where every person's data lives.

Each app declares its models in its own ``privacy.py`` (found at start-up, like ``admin.py``).
DSR access and portability, erasure, retention purges and the tenant exit export walk these
declarations instead of knowing each app; ``tests/privacy/test_registry_complete.py`` fails when a
concrete field of any installed model is neither declared personal nor listed as not personal, so a
new column cannot escape erasure or export.

Example (``carely/contacts/privacy.py``)::

    from carely.privacy.registry import Category, Erase, Personal, Reach, registry

    registry.declare(
        "contacts.Contact",
        reach=Reach("contact", "id"),                 # the row *is* the subject
        retention="contact_consent",                  # default for the fields below
        purposes=["appointment_reminders"],
        recipients=["infobip"],
        fields={
            "first_name": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW,
                                   provided_by_subject=True),
            "email": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, export="e-mail",
                              provided_by_subject=True),
            "email_bidx": Personal(Category.CONTACT, erase=Erase.DELETE_ROW, export=False),
        },
        not_personal=["id", "organisation", "created_at"],
    )
    registry.declare(
        "billing.Invoice",
        reach=Reach("contact", "contact_id"),         # a lookup path to the subject's id
        retention="invoices",
        fields={
            "contact": Personal(Category.BILLING, erase=Erase.KEEP_RESTRICTED,
                                legal_reason="ZDDV-1 art. 141: invoices are kept 10 years"),
            "notes": Personal(Category.BILLING, erase=Erase.NULL),
            "payer_email": Personal(Category.CONTACT, erase=Erase.KEYED_HASH,
                                    hash_purpose="email"),
        },
        not_personal=["id", "organisation", "number", "total", "issued_on"],
    )
    registry.not_personal_model("contenttypes.ContentType", reason="names of tables, no people")
    registry.opaque_model("sessions.Session", category=Category.TECHNICAL_LOG,
                          retention="visitor_and_log_data", reason="encoded, expires in 12 h")

Rules the declarations follow (checked when declared, so a typo stops start-up):
- every name in ``fields`` and ``not_personal`` is a concrete field (or many-to-many) of the model,
  and no name is in both;
- ``Erase.KEEP_RESTRICTED`` needs ``legal_reason``; ``Erase.NULL`` needs a nullable field or a
  text field (emptied to ""); ``Erase.KEYED_HASH`` needs a text field;
- with several ``Reach`` entries, each personal field names the subject kind it belongs to;
- ``Erase.DELETE_ROW`` and ``Erase.KEEP_RESTRICTED`` are not mixed on one subject kind of a model
  (deleting the row would defeat the restriction).

Subject kinds are declared once (``registry.subject_kind``); a ``Reach`` names one. Reaches carry
the lookup path to the organisation (default ``"organisation_id"``), or ``None`` for rows the
platform holds as controller (staff accounts); see ``Subject`` for how that scopes queries.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

if TYPE_CHECKING:
    from carely.orgs.models import Organisation
    from carely.privacy.erasure import ErasureReport


class Category(enum.StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    HEALTH_ADJACENT = "health_adjacent"
    CONSENT_EVIDENCE = "consent_evidence"
    MESSAGE_CONTENT = "message_content"
    FILE = "file"
    TECHNICAL_LOG = "technical_log"
    BILLING = "billing"


class Erase(enum.StrEnum):
    DELETE_ROW = "delete_row"
    NULL = "null"
    KEYED_HASH = "keyed_hash"
    KEEP_RESTRICTED = "keep_restricted"


@dataclass(frozen=True)
class Personal:
    """One field that holds personal data, and what each duty does with it.

    ``export``: True exports under the field's name, a string under that column name, False not
    at all (blind indexes, digests). ``retention`` falls back to the model's default.
    ``subject`` names the subject kind when the model has several reaches.
    """

    category: Category
    erase: Erase
    export: str | bool = True
    provided_by_subject: bool = False
    retention: str | None = None
    legal_reason: str = ""
    hash_purpose: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class Reach:
    """How to get from a row to its data subject: ``filter(**{path: subject.id})``.

    ``organisation`` is the lookup path to the row's organisation id, or None for rows the
    platform holds as controller. ``where`` adds fixed filters (e.g. ``{"actor_type": "user"}``).
    """

    kind: str
    path: str
    organisation: str | None = "organisation_id"
    where: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Subject:
    """One data subject: a kind declared with ``registry.subject_kind``, its organisation and id.

    ``organisation_id`` None means the platform as controller (allowed only for platform kinds
    such as staff accounts); an organisation's subject never reaches another organisation's rows.
    """

    kind: str
    organisation_id: int | None
    id: int | str


@dataclass(frozen=True)
class SubjectKind:
    name: str
    platform: bool
    description: str


@dataclass(frozen=True)
class FieldEntry:
    name: str
    field: models.Field[Any, Any]
    personal: Personal
    retention: str

    @property
    def export_name(self) -> str | None:
        if self.personal.export is False:
            return None
        if self.personal.export is True:
            return self.name
        return str(self.personal.export)

    @property
    def is_file(self) -> bool:
        return isinstance(self.field, models.FileField)


@dataclass(frozen=True)
class ModelEntry:
    model: type[models.Model]
    reaches: tuple[Reach, ...]
    fields: tuple[FieldEntry, ...]
    not_personal: frozenset[str]
    purposes: tuple[str, ...]
    recipients: tuple[str, ...]
    source: str
    restricted_flag: str | None = None

    @property
    def label(self) -> str:
        return self.model._meta.label

    def reach_for(self, kind: str) -> Reach | None:
        return next((r for r in self.reaches if r.kind == kind), None)

    def fields_for(self, kind: str) -> tuple[FieldEntry, ...]:
        if len(self.reaches) == 1:
            return self.fields if self.reaches[0].kind == kind else ()
        return tuple(f for f in self.fields if f.personal.subject == kind)


@dataclass(frozen=True)
class NotPersonalModel:
    model: type[models.Model]
    reason: str


@dataclass(frozen=True)
class OpaqueModel:
    """Personal data that no column ties to a subject id (encoded sessions, login attempts by
    typed user name): erase and export cannot reach it row by row, so the declaration says how
    it is otherwise bounded (usually a short retention purge)."""

    model: type[models.Model]
    category: Category
    retention: str
    reason: str


class DeclarationError(ImproperlyConfigured):
    """A privacy declaration does not match the model; the message names model and field."""


def classifiable_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """The fields a declaration must classify: concrete columns (FKs too) and many-to-many."""
    opts = model._meta
    return [*opts.concrete_fields, *opts.many_to_many]


def _model_of(model: type[models.Model] | str) -> type[models.Model]:
    if isinstance(model, str):
        try:
            return apps.get_model(model)
        except (LookupError, ValueError) as exc:
            raise DeclarationError(f"privacy declaration names unknown model {model!r}") from exc
    return model


_TEXT_FIELDS = (models.CharField, models.TextField)
_KEYED_HASH_LENGTH = 47  # "kh1:" and 43 characters of base64url (carely.privacy.erasure)


def _encrypted(model_field: models.Field[Any, Any]) -> bool:
    return bool(getattr(model_field, "encrypted", False))


class Registry:
    def __init__(self) -> None:
        self._models: dict[str, ModelEntry] = {}
        self._not_personal_models: dict[str, NotPersonalModel] = {}
        self._opaque_models: dict[str, OpaqueModel] = {}
        self._kinds: dict[str, SubjectKind] = {}

    # --- declarations -------------------------------------------------------------------------
    def subject_kind(self, name: str, *, platform: bool = False, description: str = "") -> None:
        """Declare a kind of data subject ("contact", "staff_user"). Platform kinds may be
        addressed without an organisation (the platform is their controller)."""
        existing = self._kinds.get(name)
        kind = SubjectKind(name, platform, description)
        if existing is not None and existing != kind:
            raise DeclarationError(f"subject kind {name!r} is declared twice, differently")
        self._kinds[name] = kind

    def declare(
        self,
        model: type[models.Model] | str,
        *,
        reach: Reach | Sequence[Reach],
        fields: Mapping[str, Personal],
        not_personal: Iterable[str] = (),
        retention: str | None = None,
        purposes: Iterable[str] = (),
        recipients: Iterable[str] = (),
        restricted_flag: str | None = None,
    ) -> None:
        """Declare the personal fields of one model; every other field goes in ``not_personal``.

        ``restricted_flag`` names a nullable datetime field that erasure sets on rows it keeps
        (``Erase.KEEP_RESTRICTED``), so other code can refuse further use (RET-4).
        """
        model = _model_of(model)
        label = model._meta.label
        reaches = (reach,) if isinstance(reach, Reach) else tuple(reach)
        if not reaches:
            raise DeclarationError(f"{label}: a declaration needs at least one Reach")
        if self._is_declared(label):
            raise DeclarationError(f"{label} is declared twice in the privacy registry")
        for r in reaches:
            if r.kind not in self._kinds:
                raise DeclarationError(
                    f"{label}: subject kind {r.kind!r} is not declared; call "
                    f"registry.subject_kind({r.kind!r}, ...) first"
                )
        not_personal_set = frozenset(not_personal)
        for name in not_personal_set:
            self._field(model, name)
        both = not_personal_set & set(fields)
        if both:
            raise DeclarationError(
                f"{label}: {sorted(both)} are declared both personal and not personal"
            )
        if restricted_flag is not None:
            flag = self._field(model, restricted_flag)
            if not (isinstance(flag, models.DateTimeField) and flag.null):
                raise DeclarationError(
                    f"{label}.{restricted_flag}: restricted_flag needs a nullable DateTimeField"
                )
        entries = tuple(
            self._field_entry(model, name, personal, reaches, retention)
            for name, personal in fields.items()
        )
        self._check_erasure_mix(label, reaches, entries)
        self._models[label] = ModelEntry(
            model=model,
            reaches=reaches,
            fields=entries,
            not_personal=not_personal_set,
            purposes=tuple(purposes),
            recipients=tuple(recipients),
            source=_caller_module(),
            restricted_flag=restricted_flag,
        )

    def not_personal_model(self, model: type[models.Model] | str, *, reason: str) -> None:
        """Mark a whole model as holding no personal data, with the reason a reviewer can check."""
        model = _model_of(model)
        label = model._meta.label
        if not reason.strip():
            raise DeclarationError(f"{label}: not_personal_model needs a reason")
        if self._is_declared(label):
            raise DeclarationError(f"{label} is declared twice in the privacy registry")
        self._not_personal_models[label] = NotPersonalModel(model, reason)

    def opaque_model(
        self,
        model: type[models.Model] | str,
        *,
        category: Category,
        retention: str,
        reason: str,
    ) -> None:
        """Declare a model whose personal data no column ties to a subject id (see OpaqueModel)."""
        model = _model_of(model)
        label = model._meta.label
        if not reason.strip():
            raise DeclarationError(f"{label}: opaque_model needs a reason")
        if self._is_declared(label):
            raise DeclarationError(f"{label} is declared twice in the privacy registry")
        self._opaque_models[label] = OpaqueModel(model, category, retention, reason)

    def _is_declared(self, label: str) -> bool:
        return (
            label in self._models
            or label in self._not_personal_models
            or label in self._opaque_models
        )

    # --- validation helpers -------------------------------------------------------------------
    @staticmethod
    def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
        label = model._meta.label
        try:
            found = model._meta.get_field(name)
        except FieldDoesNotExist:
            raise DeclarationError(
                f"{label}.{name}: the privacy declaration names a field the model does not have"
            ) from None
        if not isinstance(found, models.Field) or found not in classifiable_fields(model):
            raise DeclarationError(
                f"{label}.{name} is not a concrete field of the model (reverse relations and "
                "generic keys are declared on the model that holds the column)"
            )
        return found

    def _field_entry(
        self,
        model: type[models.Model],
        name: str,
        personal: Personal,
        reaches: tuple[Reach, ...],
        default_retention: str | None,
    ) -> FieldEntry:
        where = f"{model._meta.label}.{name}"
        model_field = self._field(model, name)
        retention = personal.retention or default_retention
        if not retention:
            raise DeclarationError(f"{where}: no retention category (give one here or per model)")
        if personal.erase is Erase.KEEP_RESTRICTED and not personal.legal_reason.strip():
            raise DeclarationError(f"{where}: keep_restricted needs the legal reason to keep it")
        if personal.erase is Erase.NULL and not (
            model_field.null or isinstance(model_field, _TEXT_FIELDS) or model_field.many_to_many
        ):
            raise DeclarationError(
                f"{where}: erase=null needs a nullable field or a text field (emptied to '')"
            )
        if personal.erase is Erase.KEYED_HASH:
            if not isinstance(model_field, _TEXT_FIELDS):
                raise DeclarationError(f"{where}: erase=keyed_hash needs a text field")
            short = (model_field.max_length or 0) < _KEYED_HASH_LENGTH
            if isinstance(model_field, models.CharField) and short and not _encrypted(model_field):
                raise DeclarationError(
                    f"{where}: erase=keyed_hash stores {_KEYED_HASH_LENGTH} characters; "
                    f"max_length is {model_field.max_length}"
                )
        if len(reaches) > 1 and personal.subject not in {r.kind for r in reaches}:
            raise DeclarationError(
                f"{where}: the model has several reaches; say subject=<one of "
                f"{sorted(r.kind for r in reaches)}>"
            )
        return FieldEntry(name=name, field=model_field, personal=personal, retention=retention)

    @staticmethod
    def _check_erasure_mix(
        label: str, reaches: tuple[Reach, ...], entries: tuple[FieldEntry, ...]
    ) -> None:
        for r in reaches:
            kinds = {
                e.personal.erase
                for e in entries
                if len(reaches) == 1 or e.personal.subject == r.kind
            }
            if Erase.DELETE_ROW in kinds and Erase.KEEP_RESTRICTED in kinds:
                raise DeclarationError(
                    f"{label}: delete_row and keep_restricted on the same subject kind "
                    f"({r.kind}); deleting the row would lose what must be kept"
                )

    # --- reading the declarations -------------------------------------------------------------
    def entries(self) -> list[ModelEntry]:
        return list(self._models.values())

    def entry(self, model: type[models.Model] | str) -> ModelEntry | None:
        label = model if isinstance(model, str) else model._meta.label
        return self._models.get(label)

    def not_personal_models(self) -> dict[str, NotPersonalModel]:
        return dict(self._not_personal_models)

    def opaque_models(self) -> dict[str, OpaqueModel]:
        return dict(self._opaque_models)

    def kinds(self) -> dict[str, SubjectKind]:
        return dict(self._kinds)

    def kind(self, name: str) -> SubjectKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise LookupError(f"unknown subject kind {name!r}") from None

    def unclassified(self, models_: Iterable[type[models.Model]]) -> list[str]:
        """``app_label.Model.field`` for every field no declaration covers."""
        missing: list[str] = []
        for model in models_:
            label = model._meta.label
            if model._meta.proxy or label in self._not_personal_models:
                continue
            if label in self._opaque_models:
                continue
            entry = self._models.get(label)
            declared = set() if entry is None else {f.name for f in entry.fields}
            declared |= set() if entry is None else entry.not_personal
            missing.extend(
                f"{label}.{f.name}" for f in classifiable_fields(model) if f.name not in declared
            )
        return missing

    # --- the duties (implemented in their own modules) ----------------------------------------
    def describe(self) -> list[dict[str, Any]]:
        from carely.privacy.describe import describe

        return describe(self)

    def collect(self, subject: Subject) -> dict[str, list[dict[str, Any]]]:
        from carely.privacy.collect import collect

        return collect(self, subject)

    def erase(self, subject: Subject, *, dry_run: bool) -> ErasureReport:
        from carely.privacy.erasure import erase

        return erase(self, subject, dry_run=dry_run)

    def export(
        self,
        scope: Subject | Organisation,
        stream: TextIO,
        *,
        format: str = "json",
        portability: bool = False,
        chunk_size: int = 2000,
    ) -> int:
        from carely.privacy.export import export

        return export(
            self, scope, stream, format=format, portability=portability, chunk_size=chunk_size
        )


def _caller_module() -> str:
    import inspect

    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame and frame.f_back else None
        return caller.f_globals.get("__name__", "?") if caller else "?"
    finally:
        del frame


registry = Registry()
declare = registry.declare
not_personal_model = registry.not_personal_model
subject_kind = registry.subject_kind

# The kinds of data subject the platform itself knows; apps may declare more in their privacy.py.
registry.subject_kind(
    "staff_user", platform=True, description="a person with a login (clinic staff, operators)"
)
registry.subject_kind("contact", description="a clinic's patient or other contact person")
