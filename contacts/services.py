"""Writes over contacts (CNT-1, CNT-2, CNT-4, CNT-6, DSR-8).

Every write checks the organisation is not suspended, writes an audit event (ids only) in the
same transaction, and every change to an existing contact keeps its before and after in
``ContactChange``. A restricted contact (CNT-4) refuses changes until the restriction is lifted,
and lifting needs the record that the subject was informed.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.models import BooleanField, Q, signals
from django.db.models.base import ModelState
from django.db.models.expressions import RawSQL
from django.utils import timezone

from carely.audit.context import current_actor, current_request_id
from carely.audit.services import audit_record
from carely.lib.keyed_hash import keyed_hash
from carely.lib.normalise import InvalidPhoneNumber
from carely.orgs.models import Organisation
from carely.orgs.suspension import suspension_check_write
from carely.privacy.crypto import Keyring, encrypt, keyring
from carely.privacy.fields import BlindIndexField, blind_indexes, encrypted_fields
from contacts.models import ChangeKind, Contact, ContactChange, ContactTag, SourceKind, Tag, tag_key
from contacts.validation import (
    ContactInvalid,
    Errors,
    contact_clean,
    contact_required_errors,
    contact_state,
    is_minor,
)

__all__ = [
    "BULK_UPSERT_LIMIT",
    "ContactInvalid",
    "ContactRestricted",
    "PreparedBatch",
    "RestrictionError",
    "RowResult",
    "TagInvalid",
    "contact_create",
    "contact_lift_restriction",
    "contact_match",
    "contact_restrict",
    "contact_statement_add",
    "contact_tags_set",
    "contact_update",
    "contacts_bulk_apply",
    "contacts_bulk_prepare",
    "contacts_bulk_upsert",
    "tag_delete",
    "tag_names_clean",
    "tag_names_parse",
    "tag_rename",
]

BULK_UPSERT_LIMIT = 1000
MATCH_KEYS = ("external_id", "email", "phone")  # CNT-2: in this order


class ContactRestricted(Exception):
    """The contact is restricted (CNT-4): it is only stored, not changed or used."""

    def __init__(self, contact: Contact) -> None:
        self.contact_id = contact.pk
        super().__init__(
            f"Contact #{contact.pk} is restricted: it is only stored and cannot be "
            "changed. Lift the restriction first, after informing the person."
        )


class RestrictionError(ValueError):
    """A restriction cannot be placed or lifted as asked; the message says why."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _change_record(
    *,
    contact: Contact,
    kind: str,
    changes: Mapping[str, Any] | None = None,
    statement: str = "",
    reason: str = "",
) -> ContactChange:
    actor = current_actor()
    return ContactChange(
        organisation_id=contact.organisation_id,
        contact=contact,
        kind=kind,
        changes=json.dumps(changes, sort_keys=True) if changes else "",
        statement=statement,
        reason=reason,
        actor_type=actor.type,
        actor_id=actor.id,
        request_id=current_request_id(),
    )


def _diff(contact: Contact, cleaned: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {"before": _jsonable(getattr(contact, name)), "after": _jsonable(value)}
        for name, value in cleaned.items()
        if getattr(contact, name) != value
    }


def _guardian(organisation: Organisation, guardian: Any) -> Contact | None:
    if guardian in (None, ""):
        return None
    guardian_id = guardian.pk if isinstance(guardian, Contact) else guardian
    found = Contact.objects.for_organisation(organisation).filter(pk=guardian_id).first()
    if found is None:
        raise ContactInvalid({"guardian": ["No such contact in this organisation."]})
    return found


def contact_create(
    *,
    organisation: Organisation,
    data: Mapping[str, Any],
    source_kind: str,
    reason: str = "",
) -> Contact:
    """A new contact from ``data`` (API field names). Raises ``ContactInvalid`` naming each bad
    field, ``OrganisationSuspended``."""
    suspension_check_write(organisation)
    if source_kind not in SourceKind.values:
        raise ValueError(f"unknown source kind {source_kind!r}")
    cleaned = contact_clean(data, region=organisation.default_phone_region)
    guardian = _guardian(organisation, data.get("guardian"))
    with transaction.atomic():
        contact = Contact.objects.create(
            organisation=organisation, source_kind=source_kind, guardian=guardian, **cleaned
        )
        audit_record(
            action="contact.created",
            organisation=organisation,
            object_type="contact",
            object_id=contact.pk,
            details={
                "source_kind": source_kind,
                "fields": sorted(k for k, v in cleaned.items() if v),
            },
        )
    return contact


_RESTRICTION_FIELDS = (
    "restricted_at",
    "restriction_reason",
    "restriction_lifted_at",
    "restriction_lift_informed_at",
    "restriction_lift_informed_how",
)


def _lock(contact: Contact) -> None:
    """Lock the contact's row for this transaction and refresh its restriction state from it
    (CNT-4): a restriction and a concurrent change, or two restrictions, cannot both pass their
    checks on what each read before the other wrote."""
    fresh = Contact.objects.select_for_update(no_key=True).only(*_RESTRICTION_FIELDS)
    row = fresh.get(pk=contact.pk)
    for name in _RESTRICTION_FIELDS:
        setattr(contact, name, getattr(row, name))


def contact_update(
    *, contact: Contact, data: Mapping[str, Any], reason: str = ""
) -> dict[str, dict[str, Any]]:
    """Change the fields in ``data``; returns ``{field: {"before", "after"}}`` of what changed
    (empty when nothing did, and then nothing is written). Raises ``ContactInvalid``,
    ``ContactRestricted``, ``OrganisationSuspended``."""
    organisation = contact.organisation
    suspension_check_write(organisation)
    if contact.is_restricted:
        raise ContactRestricted(contact)
    cleaned = contact_clean(
        data, region=organisation.default_phone_region, current=contact_state(contact)
    )
    with transaction.atomic():
        _lock(contact)
        if contact.is_restricted:  # restricted since it was read
            raise ContactRestricted(contact)
        changes = _diff(contact, cleaned)
        if "guardian" in data:
            guardian = _guardian(organisation, data["guardian"])
            if guardian is not None and guardian.pk == contact.pk:
                raise ContactInvalid({"guardian": ["A contact cannot be their own guardian."]})
            if contact.guardian_id != (guardian.pk if guardian else None):
                changes["guardian"] = {
                    "before": contact.guardian_id,
                    "after": guardian.pk if guardian else None,
                }
                contact.guardian = guardian
        if not changes:
            return {}
        for name in cleaned.keys() & changes.keys():
            setattr(contact, name, cleaned[name])
        contact.updated_at = timezone.now()
        fields = {"updated_at", *(("guardian" if n == "guardian" else n) for n in changes)}
        contact.save(update_fields=fields)
        _change_record(
            contact=contact, kind=ChangeKind.RECTIFICATION, changes=changes, reason=reason
        ).save()
        audit_record(
            action="contact.updated",
            organisation=organisation,
            object_type="contact",
            object_id=contact.pk,
            details={"fields": sorted(changes)},
        )
    return changes


def contact_statement_add(*, contact: Contact, statement: str, reason: str = "") -> ContactChange:
    """DSR-8: a supplementary statement that completes the record, kept beside it."""
    suspension_check_write(contact.organisation)
    text = statement.strip()
    if not text:
        raise ContactInvalid({"statement": ["Write the statement that completes the record."]})
    with transaction.atomic():
        change = _change_record(
            contact=contact,
            kind=ChangeKind.SUPPLEMENTARY_STATEMENT,
            statement=text,
            reason=reason,
        )
        change.save()
        audit_record(
            action="contact.statement_added",
            organisation=contact.organisation,
            object_type="contact",
            object_id=contact.pk,
            details={"change_id": change.pk},
        )
    return change


def contact_restrict(*, contact: Contact, reason: str) -> None:
    """CNT-4: from now on the contact is only stored."""
    suspension_check_write(contact.organisation)
    if not reason.strip():
        raise RestrictionError("Say why the contact is restricted (for example the DSR number).")
    with transaction.atomic():
        _lock(contact)
        if contact.is_restricted:
            raise RestrictionError(f"Contact #{contact.pk} is already restricted.")
        contact.restricted_at = timezone.now()
        contact.restriction_reason = reason.strip()
        contact.restriction_lifted_at = None
        contact.restriction_lift_informed_at = None
        contact.restriction_lift_informed_how = ""
        contact.save(update_fields=list(_RESTRICTION_FIELDS))
        _change_record(contact=contact, kind=ChangeKind.RESTRICTED, reason=reason.strip()).save()
        audit_record(
            action="contact.restricted",
            organisation=contact.organisation,
            object_type="contact",
            object_id=contact.pk,
        )


def contact_lift_restriction(
    *, contact: Contact, informed_at: dt.datetime | None, informed_how: str
) -> None:
    """CNT-4: lift a restriction, recording first when and how the subject was informed."""
    suspension_check_write(contact.organisation)
    how = (informed_how or "").strip()
    if informed_at is None or not how:
        raise RestrictionError(
            "Before lifting the restriction, record when and how the person was informed "
            "(Art. 18(3) GDPR)."
        )
    if informed_at > timezone.now():
        raise RestrictionError("The time the person was informed is in the future.")
    with transaction.atomic():
        _lock(contact)
        if not contact.is_restricted:
            raise RestrictionError(f"Contact #{contact.pk} is not restricted.")
        contact.restricted_at = None
        contact.restriction_lifted_at = timezone.now()
        contact.restriction_lift_informed_at = informed_at
        contact.restriction_lift_informed_how = how[:200]
        contact.save(
            update_fields=[
                "restricted_at",
                "restriction_lifted_at",
                "restriction_lift_informed_at",
                "restriction_lift_informed_how",
            ]
        )
        _change_record(
            contact=contact,
            kind=ChangeKind.RESTRICTION_LIFTED,
            changes={"informed_at": informed_at.isoformat(), "informed_how": how[:200]},
        ).save()
        audit_record(
            action="contact.restriction_lifted",
            organisation=contact.organisation,
            object_type="contact",
            object_id=contact.pk,
        )


@functools.cache
def _contact_indexes() -> dict[str, BlindIndexField]:
    return blind_indexes(Contact)


def _digests(values: Mapping[str, Any], region: str, *, cleaned: bool = False) -> dict[str, str]:
    """``{"email": digest, ...}`` of the match keys present in ``values``.

    ``cleaned``: the values come from ``contact_clean``, whose e-mail and external id already are
    their normal forms (lower-cased and stripped, stripped), so they are hashed as they are
    instead of being normalised a second time."""
    indexes = _contact_indexes()
    out: dict[str, str] = {}
    for key in MATCH_KEYS:
        value = values.get(key)
        if not value:
            continue
        if cleaned and key != "phone" and value.__class__ is str:
            out[key] = keyed_hash(value, purpose=indexes[key].kind)
            continue
        try:
            digest = indexes[key].digest(value, region=region)
        except InvalidPhoneNumber:
            continue
        if digest:
            out[key] = digest
    return out


def _conflicts(candidate: Contact, external_id: str | None) -> bool:
    """A match on e-mail or phone is not the same person when both carry other external ids."""
    return bool(external_id and candidate.external_id and candidate.external_id != external_id)


def contact_match(
    *,
    organisation: Organisation,
    external_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> Contact | None:
    """The existing contact these keys identify (CNT-2): external id, then e-mail, then phone.

    A contact found by e-mail or phone whose external id differs from a given one is someone
    else (a parent sharing a phone with a child's record, say) and is not matched.
    """
    region = organisation.default_phone_region
    digests = _digests({"external_id": external_id, "email": email, "phone": phone}, region)
    scoped = Contact.objects.for_organisation(organisation)
    indexes = blind_indexes(Contact)
    for key in MATCH_KEYS:
        if key not in digests:
            continue
        for candidate in scoped.filter(**{indexes[key].attname: digests[key]}).order_by("pk"):
            if key == "external_id" or not _conflicts(candidate, (external_id or "").strip()):
                return candidate
    return None


# --- bulk upsert ---------------------------------------------------------------------------


@dataclass
class RowResult:
    """The outcome of one row: created, updated, unchanged or rejected (with field errors)."""

    index: int
    status: str
    id: int | None = None
    errors: Errors = field(default_factory=dict)
    contact: Contact | None = field(default=None, repr=False)


@dataclass
class _Pending:
    contact: Contact
    new: bool
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)


def _present(row: Mapping[str, Any]) -> dict[str, Any]:
    """An import never erases: blank cells mean "not given" (PATCH is the way to clear)."""
    return {k: v for k, v in row.items() if v is not None and v != ""}


@dataclass
class PreparedBatch:
    """A batch validated and hashed by ``contacts_bulk_prepare``, ready for
    ``contacts_bulk_apply``; plain data only, because it may cross a process boundary
    (``contacts.imports``): the batch's ``size``, the field errors of the rows already rejected
    by index, ``(index, cleaned values, blind-index digests)`` of each other row and, with
    ``seal=True``, by index the ciphertext of each encrypted value (``{attname: text}``)."""

    size: int
    rejected: dict[int, Errors]
    cleaned_rows: list[tuple[int, dict[str, Any], dict[str, str]]]
    today: dt.date
    sealed: dict[int, dict[str, str]] = field(default_factory=dict)


def contacts_bulk_upsert(
    *,
    organisation: Organisation,
    rows: Sequence[Mapping[str, Any]],
    source_kind: str,
    reason: str = "",
) -> list[RowResult]:
    """Create or update many contacts in one transaction; one ``RowResult`` per row, in order.

    Lean per row (the import path, CNT-2): plain-function validation, each blind index computed
    once, one query for the batch's matches (only the columns it compares are decrypted), and
    on PostgreSQL ``COPY`` for new rows and ``UPDATE ... FROM (VALUES ...)`` for changed ones
    (``bulk_create``/``bulk_update`` elsewhere). A bad row is rejected with its field errors and
    never costs the good rows. Rows that match the same contact (in the database or earlier in
    the batch) update it in turn, and its history gets one record with the first "before" and
    the last "after" of each field (DSR-8). Restricted contacts are rejected (CNT-4).

    ``RowResult.contact`` of a matched row is loaded with the columns the batch compares; any
    other field loads from the database when read.

    The two halves are public so that an import can validate the next batch (pure Python, no
    database) while this one is written: ``contacts.imports`` does that in a helper thread.
    """
    suspension_check_write(organisation)
    prepared = contacts_bulk_prepare(organisation=organisation, rows=rows)
    return contacts_bulk_apply(
        organisation=organisation, prepared=prepared, source_kind=source_kind, reason=reason
    )


def contacts_bulk_prepare(
    *,
    organisation: Organisation,
    rows: Sequence[Mapping[str, Any]],
    today: dt.date | None = None,
    seal: bool = False,
) -> PreparedBatch:
    """Validate and hash ``rows`` without touching the database (safe in another process; the
    organisation's region is read from the object given). ``seal``: encrypt each good row's
    values too (``PreparedBatch.sealed``), for a writer that should not have to."""
    region = organisation.default_phone_region
    today = today or timezone.localdate()
    rejected: dict[int, Errors] = {}
    cleaned_rows: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    sealed: dict[int, dict[str, str]] = {}
    seals = _seal_plan() if seal else {}
    ring = keyring() if seal else None
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            rejected[index] = {"row": ["Not an object."]}
            continue
        try:
            cleaned = contact_clean(_present(row), region=region, require=False, today=today)
        except ContactInvalid as exc:
            rejected[index] = exc.errors
            continue
        cleaned_rows.append((index, cleaned, _digests(cleaned, region, cleaned=True)))
        if seal:
            sealed[index] = {
                name: _seal(value, seals[name], ring)
                for name, value in cleaned.items()
                if name in seals and value not in ("", None)
            }
    return PreparedBatch(len(rows), rejected, cleaned_rows, today, sealed)


@functools.cache
def _seal_plan() -> dict[str, tuple[bytes, Any]]:
    """``{attname: (associated data, field)}`` of the contact's encrypted fields."""
    return {f.attname: (f.aad(), f) for f in encrypted_fields(Contact)}  # type: ignore[attr-defined]


def _seal(value: Any, plan: tuple[bytes, Any], ring: Keyring | None) -> str:
    aad, f = plan
    text = value if value.__class__ is str else f.to_text(value)
    return encrypt(text, aad, ring=ring)


def contacts_bulk_apply(
    *, organisation: Organisation, prepared: PreparedBatch, source_kind: str, reason: str = ""
) -> list[RowResult]:
    """Match and write a prepared batch (see ``contacts_bulk_upsert``); returns its results.

    One transaction from the match to the last write, and on PostgreSQL the matched rows are
    locked by the match query (in id order, so two imports never deadlock): a contact restricted
    (CNT-4) or changed by someone else meanwhile waits for this batch, or this batch for it."""
    suspension_check_write(organisation)
    if source_kind not in SourceKind.values:
        raise ValueError(f"unknown source kind {source_kind!r}")
    with transaction.atomic():
        return _apply(organisation, prepared, source_kind, reason)


def _apply(
    organisation: Organisation, prepared: PreparedBatch, source_kind: str, reason: str
) -> list[RowResult]:
    indexes = _contact_indexes()
    cleaned_rows, today = prepared.cleaned_rows, prepared.today
    results = [RowResult(index, "pending") for index in range(prepared.size)]
    for index, errors in prepared.rejected.items():
        results[index].status, results[index].errors = "rejected", errors
    known = _known_matches(organisation, cleaned_rows)
    pending: dict[int, _Pending] = {}  # by id() of the contact object (one object per contact)
    now = timezone.now()
    new_contact = _contact_factory(organisation, source_kind, now)
    for index, cleaned, digests in cleaned_rows:
        result = results[index]
        match: Contact | None = None
        external_digest = digests.get("external_id")
        for key in MATCH_KEYS:
            if key not in digests:
                continue
            for candidate in known[key].get(digests[key], []):
                # A match on e-mail or phone is someone else when both carry other external ids
                # (compared by blind index: both sides are normalised the same way).
                if key == "external_id" or not (
                    external_digest
                    and candidate.external_id_bidx
                    and candidate.external_id_bidx != external_digest
                ):
                    match = candidate
                    break
            if match is not None:
                break
        if match is None:
            missing = contact_required_errors(cleaned)
            if missing:
                result.status, result.errors = "rejected", missing
                continue
            contact = new_contact(cleaned, digests)
            contact._sealed = prepared.sealed.get(index)  # type: ignore[attr-defined]
            pending[id(contact)] = _Pending(contact, new=True)
            for key, digest in digests.items():
                known[key].setdefault(digest, []).append(contact)
            result.status, result.contact = "created", contact
            continue
        if match.is_restricted:
            result.status = "rejected"
            result.errors = {"contact": [str(ContactRestricted(match))]}
            continue
        changes = _diff(match, cleaned)
        result.contact = match
        entry = pending.get(id(match))
        if not changes:
            result.status = "unchanged"
            continue
        if entry is None:
            entry = pending[id(match)] = _Pending(match, new=False)
        sealed = match.__dict__.get("_sealed")
        for name, change in changes.items():
            setattr(match, name, cleaned[name])
            if sealed:
                sealed.pop(name, None)  # sealed for the value this row replaces
            if name in indexes:
                setattr(match, indexes[name].attname, digests.get(name))
            first = entry.changes.get(name, change)
            entry.changes[name] = {"before": first["before"], "after": change["after"]}
        match.updated_at = now
        result.status = "updated"
        for key, digest in digests.items():
            bucket = known[key].setdefault(digest, [])
            if match not in bucket:
                bucket.append(match)

    new = [p.contact for p in pending.values() if p.new]
    changed = [p for p in pending.values() if not p.new and p.changes]
    for contact in new:
        contact.is_minor = is_minor(contact.birth_date, today)
    _insert_contacts(new)
    if changed:
        for p in changed:
            p.contact.is_minor = is_minor(p.contact.birth_date, today)
        _update_contacts(changed)
        ContactChange.objects.bulk_create(
            [
                _change_record(
                    contact=p.contact,
                    kind=ChangeKind.RECTIFICATION,
                    changes=p.changes,
                    reason=reason,
                )
                for p in changed
            ],
            batch_size=500,
        )
    for result in results:
        if result.contact is not None:
            result.id = result.contact.pk
    if new or changed:
        audit_record(
            action="contacts.bulk_upserted",
            organisation=organisation,
            object_type="contact",
            details={
                "source_kind": source_kind,
                "created_ids": [c.pk for c in new],
                "updated_ids": [p.contact.pk for p in changed],
                "rejected": sum(r.status == "rejected" for r in results),
            },
        )
    return results


def _contact_factory(
    organisation: Organisation, source_kind: str, now: dt.datetime
) -> Callable[[Mapping[str, Any], Mapping[str, str]], Contact]:
    """``new_contact(cleaned, digests)``: the unsaved ``Contact`` that
    ``Contact(organisation=..., source_kind=..., created_at=now, updated_at=now, **cleaned)`` with
    its blind indexes set gives, about 3x faster: the model is built from positional values
    (Django's fast path, signals included) over defaults computed once per batch."""
    indexes = _contact_indexes()
    fields = Contact._meta.concrete_fields
    position = {f.attname: i for i, f in enumerate(fields)}
    given = {
        "organisation_id": organisation.pk,
        "source_kind": source_kind,
        "created_at": now,
        "updated_at": now,
    }
    template: list[Any] = []
    per_row: list[tuple[int, Any]] = []  # callable defaults not given: called for each contact
    for i, f in enumerate(fields):
        if f.attname in given:
            template.append(given[f.attname])
        elif f.has_default() and callable(f.default):
            template.append(None)
            per_row.append((i, f))
        else:
            template.append(f.get_default())
    index_positions = [(key, position[f.attname]) for key, f in indexes.items()]
    organisation_field = Contact._meta.get_field("organisation")
    attnames = [f.attname for f in fields]
    # What Model.__init__ does with positional values, minus its per-field setattr and signal
    # calls (a third of the cost of a new row), valid only while nothing listens to the
    # contact's init signals; otherwise the constructor itself.
    direct = not (
        signals.pre_init.has_listeners(Contact) or signals.post_init.has_listeners(Contact)
    )

    def new_contact(cleaned: Mapping[str, Any], digests: Mapping[str, str]) -> Contact:
        values = template.copy()
        for i, f in per_row:
            values[i] = f.get_default()
        for name, value in cleaned.items():
            values[position[name]] = value
        for key, i in index_positions:
            values[i] = digests.get(key)
        if direct:
            contact = Contact.__new__(Contact)
            contact._state = ModelState()
            contact.__dict__.update(zip(attnames, values, strict=True))
        else:
            contact = Contact(*values)  # type: ignore[misc,unused-ignore]  # values in field order
        organisation_field.set_cached_value(contact, organisation)  # as organisation=... does
        return contact

    return new_contact


def _known_matches(
    organisation: Organisation, cleaned_rows: Sequence[tuple[int, dict[str, Any], dict[str, str]]]
) -> dict[str, dict[str, list[Contact]]]:
    """``{key: {digest: [contacts, by pk]}}`` of the existing contacts the batch's keys find.

    One query for all three keys, one object per contact (so two rows reaching the same contact
    by different keys update the same object), and only the columns the batch compares.
    """
    indexes = blind_indexes(Contact)
    known: dict[str, dict[str, list[Contact]]] = {key: {} for key in MATCH_KEYS}
    wanted: dict[str, set[str]] = {key: set() for key in MATCH_KEYS}
    compared: set[str] = set()
    for _, cleaned, digests in cleaned_rows:
        compared.update(cleaned)
        for key, digest in digests.items():
            wanted[key].add(digest)
    connection = connections[Contact.objects.db]
    condition = Q()
    for key in MATCH_KEYS:
        if not wanted[key]:
            continue
        if connection.vendor == "postgresql":
            # One text parameter split by the server instead of one per digest: the client
            # binds a 3,000-value IN list slowly, and adapts a text array element by element;
            # ANY(array) uses the same index. Digests are base64url, so never hold a space.
            quote = connection.ops.quote_name
            name = indexes[key].column or indexes[key].attname
            column = f"{quote(Contact._meta.db_table)}.{quote(name)}"
            # Only quoted model names go into the SQL; the digests are one parameter.
            condition |= Q(
                RawSQL(  # noqa: S611
                    f"{column} = ANY(string_to_array(%s, ' ') COLLATE \"C\")",
                    [" ".join(wanted[key])],
                    output_field=BooleanField(),
                )
            )
        else:
            condition |= Q(**{f"{indexes[key].attname}__in": wanted[key]})
    if not condition:
        return known
    columns = {
        "organisation",
        "birth_date",  # is_minor is recomputed on every change
        "restricted_at",
        "updated_at",
        "is_minor",
        *(index.attname for index in indexes.values()),
        *compared,
    }
    found = (
        Contact.objects.for_organisation(organisation)
        .filter(condition)
        .only(*columns)
        .order_by("pk")
        .select_for_update(no_key=True)  # see contacts_bulk_apply
    )
    for contact in found:
        for key in MATCH_KEYS:
            digest = getattr(contact, indexes[key].attname)
            if digest and digest in wanted[key]:
                known[key].setdefault(digest, []).append(contact)
    return known


# Values psycopg adapts exactly as Django would prepare them (no subclasses: a TextChoices member
# is a str *and* an Enum, and goes through Django).
_PLAIN_TYPES = frozenset({str, int, bool, dt.date})


def _column_plan(fields: Sequence[Any]) -> list[tuple[str, bytes | None, Any]]:
    """``(attname, associated data or None when not encrypted, field)`` of each field, worked
    out once per batch instead of once per value."""
    return [(f.attname, f.aad() if getattr(f, "encrypted", False) else None, f) for f in fields]


def _db_values(
    contact: Contact,
    plan: Sequence[tuple[str, bytes | None, Any]],
    connection: Any,
    ring: Keyring,
) -> list[Any]:
    """The column values of ``plan``'s fields on PostgreSQL, as ``get_db_prep_save`` gives them
    but without its generic conversions for the common types (about 3x faster on a 26-column
    row): text and dates of encrypted fields are encrypted with ``ring`` (read once per batch),
    plain values and aware datetimes (which the PostgreSQL backend passes through) go as is."""
    out: list[Any] = []
    sealed = contact.__dict__.get("_sealed")
    for attname, aad, f in plan:
        value = getattr(contact, attname)
        cls = value.__class__
        if aad is not None:
            if sealed:
                # Sealed by contacts_bulk_prepare (a value changed since is no longer there).
                ciphertext = sealed.get(attname)
                if ciphertext is not None:
                    out.append(ciphertext)
                    continue
            if cls is str:
                out.append(encrypt(value, aad, ring=ring) if value else "")
                continue
            if cls is dt.date:
                out.append(encrypt(f.to_text(value), aad, ring=ring))
                continue
        elif (
            value is None
            or cls in _PLAIN_TYPES
            or (cls is dt.datetime and value.tzinfo is not None)
        ):
            out.append(value)
            continue
        out.append(f.get_db_prep_save(value, connection))
    return out


def _insert_contacts(new: list[Contact]) -> None:
    """Insert new contacts (blind indexes already set), giving each its ``pk``.

    PostgreSQL: ids drawn from the table's sequence in one query, then one ``COPY`` (about 5x
    faster than a multi-row INSERT with 27 parameters a row). Elsewhere: ``bulk_create``.
    """
    if not new:
        return
    connection = connections[Contact.objects.db]
    if connection.vendor != "postgresql":
        Contact.objects.bulk_create(new, batch_size=500)
        return
    meta = Contact._meta
    pk: Any = meta.pk
    fields: list[Any] = [f for f in meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in [pk, *fields])
    ring = keyring()
    plan = _column_plan(fields)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(new)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for contact, pk in zip(new, ids, strict=True):
                contact.pk = pk
                copy.write_row([pk, *_db_values(contact, plan, connection, ring)])
    for contact in new:
        contact._state.adding = False
        contact._state.db = connection.alias


def _update_contacts(changed: list[_Pending]) -> None:
    """Write the changed fields (and their blind indexes, ``updated_at``, ``is_minor``).

    PostgreSQL: one ``UPDATE ... FROM (VALUES ...)`` per set of changed columns (an import
    usually has one or two such sets), instead of ``bulk_update``'s CASE per column and row.
    """
    indexes = blind_indexes(Contact)
    meta = Contact._meta
    groups: dict[tuple[str, ...], list[Contact]] = {}
    for p in changed:
        wanted = {"updated_at", "is_minor"}
        for name in p.changes:
            wanted.add(name)
            if name in indexes:
                wanted.add(indexes[name].name)
        groups.setdefault(tuple(sorted(wanted)), []).append(p.contact)
    connection = connections[Contact.objects.db]
    if connection.vendor != "postgresql":
        for names, contacts in groups.items():
            Contact.objects.bulk_update(contacts, names, batch_size=250)
        return
    quote = connection.ops.quote_name
    pk: Any = meta.pk
    table = quote(meta.db_table)
    pk_column = quote(pk.column)
    ring = keyring()
    with connection.cursor() as cursor:
        for names, contacts in groups.items():
            fields: list[Any] = [meta.get_field(name) for name in names]
            plan = _column_plan(fields)
            casts = [f"%s::{pk.db_type(connection)}"]
            casts += [f"%s::{f.db_type(connection)}" for f in fields]
            placeholder = f"({', '.join(casts)})"
            targets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
            alias = ", ".join([pk_column, *(quote(f.column) for f in fields)])
            for start in range(0, len(contacts), 500):
                chunk = contacts[start : start + 500]
                params: list[Any] = []
                for contact in chunk:
                    params.append(contact.pk)
                    params.extend(_db_values(contact, plan, connection, ring))
                rows = ", ".join([placeholder] * len(chunk))
                sql = f"UPDATE {table} AS t SET {targets} FROM (VALUES {rows}) AS v({alias}) "  # noqa: S608
                cursor.execute(f"{sql}WHERE t.{pk_column} = v.{pk_column}", params)


# --- tags ------------------------------------------------------------------------------------

TAG_NAME_LIMIT = 40
TAGS_PER_CONTACT_LIMIT = 100


class TagInvalid(ContactInvalid):
    """A tag name is not acceptable; ``errors`` names the field ("tags" or "name")."""


def _tag_name_problem(name: str) -> str | None:
    if not name:
        return "A tag is empty: give it a name or remove it."
    if "," in name:
        return (
            f"Tag “{name}” contains a comma; commas separate tags, so write it as two tags "
            "or choose a name without one."
        )
    if len(name) > TAG_NAME_LIMIT:
        return (
            f"Tag “{name}” is too long: at most {TAG_NAME_LIMIT} characters, this has {len(name)}."
        )
    return None


def tag_names_clean(names: Sequence[Any], *, field: str = "tags") -> list[str]:
    """Trimmed names, first spelling kept when two differ only in case. Raises ``TagInvalid``
    under ``field`` with one message per bad tag."""
    errors: list[str] = []
    cleaned: dict[str, str] = {}
    for raw in names:
        if not isinstance(raw, str):
            errors.append(f"Tag {raw!r} is not text; send each tag as a string.")
            continue
        name = " ".join(raw.split())  # trimmed, and no tabs or runs of spaces inside
        problem = _tag_name_problem(name)
        if problem:
            errors.append(problem)
        else:
            cleaned.setdefault(tag_key(name), name)
    if len(cleaned) > TAGS_PER_CONTACT_LIMIT:
        errors.append(
            f"{len(cleaned)} tags is too many: a contact can carry at most "
            f"{TAGS_PER_CONTACT_LIMIT}."
        )
    if errors:
        raise TagInvalid({field: errors})
    return list(cleaned.values())


def tag_names_parse(text: str) -> list[str]:
    """Names from a comma-separated input ("diabetes-check, newsletter"); blanks between commas
    are ignored, so a trailing comma is harmless."""
    return [part for part in (p.strip() for p in text.split(",")) if part]


def _tags_ensure(organisation: Organisation, names: Sequence[str]) -> dict[str, Tag]:
    """``{key: Tag}`` for ``names``, creating the missing ones. ``ignore_conflicts`` lets two
    requests create the same new tag at once: both then read the one row that won."""
    keys = {tag_key(n): n for n in names}
    scoped = Tag.objects.for_organisation(organisation)
    found = {t.key: t for t in scoped.filter(key__in=keys)}
    missing = [
        Tag(organisation=organisation, name=name, key=key)
        for key, name in keys.items()
        if key not in found
    ]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        found.update({t.key: t for t in scoped.filter(key__in=[t.key for t in missing])})
    return found


def contact_tags_set(
    *, contact: Contact, names: Sequence[Any], reason: str = "", record_change: bool = True
) -> dict[str, list[str]]:
    """Replace the contact's tags with ``names``, creating tags the organisation does not have
    yet. A name that differs from an existing tag only in case is that tag.

    Returns ``{"before": [...], "after": [...]}`` (sorted names), or ``{}`` when nothing
    changed (and then nothing is written). The change is one entry in the contact's history
    (DSR-8) unless ``record_change`` is False, for the first tags of a contact created in the
    same transaction. Raises ``TagInvalid``, ``ContactRestricted``, ``OrganisationSuspended``.
    """
    organisation = contact.organisation
    suspension_check_write(organisation)
    if contact.is_restricted:
        raise ContactRestricted(contact)
    wanted = tag_names_clean(names)
    with transaction.atomic():
        _lock(contact)
        if contact.is_restricted:
            raise ContactRestricted(contact)
        links = ContactTag.objects.for_organisation(organisation).filter(contact=contact)
        current = {link.tag.key: link for link in links.select_related("tag")}
        wanted_keys = {tag_key(n) for n in wanted}
        removed = [link for key, link in current.items() if key not in wanted_keys]
        added_names = [n for n in wanted if tag_key(n) not in current]
        if not removed and not added_names:
            return {}
        tags = _tags_ensure(organisation, added_names)
        added = [tags[tag_key(n)] for n in added_names]
        if removed:
            ContactTag.objects.filter(pk__in=[link.pk for link in removed]).delete()
        ContactTag.objects.bulk_create(
            ContactTag(organisation=organisation, contact=contact, tag=tag, name=tag.name)
            for tag in added
        )
        before = sorted((link.name for link in current.values()), key=tag_key)
        after = sorted(
            [link.name for key, link in current.items() if key in wanted_keys]
            + [tag.name for tag in added],
            key=tag_key,
        )
        contact.updated_at = timezone.now()
        contact.save(update_fields=["updated_at"])
        # A page or serializer that prefetched the old tags must not show them after this.
        getattr(contact, "_prefetched_objects_cache", {}).pop("tag_links", None)
        if record_change:
            _change_record(
                contact=contact,
                kind=ChangeKind.RECTIFICATION,
                changes={"tags": {"before": before, "after": after}},
                reason=reason,
            ).save()
        audit_record(  # tag ids, not names: a name can say something about the patient
            action="contact.tags_set",
            organisation=organisation,
            object_type="contact",
            object_id=contact.pk,
            details={
                "added_tag_ids": sorted(t.pk for t in added),
                "removed_tag_ids": sorted(link.tag_id for link in removed),
            },
        )
    return {"before": before, "after": after}


def tag_rename(*, tag: Tag, name: str) -> Tag:
    """Give the tag a new name everywhere it is used. Raises ``TagInvalid`` (field "name") when
    the name is not acceptable or another tag of the organisation already has it."""
    organisation = tag.organisation
    suspension_check_write(organisation)
    (new_name,) = tag_names_clean([name], field="name")
    key = tag_key(new_name)
    others = Tag.objects.for_organisation(organisation).exclude(pk=tag.pk)
    if others.filter(key=key).exists():
        raise TagInvalid(
            {
                "name": [
                    f"There is already a tag “{new_name}”. Choose another name, or delete one "
                    "of the two tags."
                ]
            }
        )
    if new_name == tag.name:
        return tag
    with transaction.atomic():
        tag.name, tag.key = new_name, key
        tag.save(update_fields=["name", "key"])
        ContactTag.objects.filter(tag=tag).update(name=new_name)
        audit_record(
            action="contact_tag.renamed",
            organisation=organisation,
            object_type="contact_tag",
            object_id=tag.pk,
        )
    return tag


def tag_delete(*, tag: Tag, reason: str = "") -> int:
    """Delete the tag and take it off every contact; each of those contacts' history records
    the removal (DSR-8). Returns how many contacts carried it."""
    organisation = tag.organisation
    suspension_check_write(organisation)
    actor = current_actor()
    with transaction.atomic():
        carriers = ContactTag.objects.filter(tag=tag).values("contact_id")
        names: dict[int, list[str]] = {}
        for contact_id, name in ContactTag.objects.filter(contact_id__in=carriers).values_list(
            "contact_id", "name"
        ):
            names.setdefault(contact_id, []).append(name)
        why = reason or f"The tag “{tag.name}” was deleted."
        ContactChange.objects.bulk_create(
            ContactChange(
                organisation=organisation,
                contact_id=contact_id,
                kind=ChangeKind.RECTIFICATION,
                changes=json.dumps(
                    {
                        "tags": {
                            "before": sorted(before, key=tag_key),
                            "after": sorted((n for n in before if n != tag.name), key=tag_key),
                        }
                    },
                    sort_keys=True,
                ),
                reason=why,
                actor_type=actor.type,
                actor_id=actor.id,
                request_id=current_request_id(),
            )
            for contact_id, before in names.items()
        )
        Contact.objects.filter(pk__in=carriers).update(updated_at=timezone.now())
        tag_id = tag.pk
        tag.delete()  # the links go with it (CASCADE)
        audit_record(
            action="contact_tag.deleted",
            organisation=organisation,
            object_type="contact_tag",
            object_id=tag_id,
            details={"contacts": len(names)},
        )
    return len(names)
