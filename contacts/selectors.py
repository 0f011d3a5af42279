"""Reads over contacts for the staff UI, always scoped to one organisation (TEN-1).

Names and other columns are encrypted at rest (SEC-8), so the database cannot search them; an
exact e-mail, phone number or external id is found through its blind index instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from carely.lib.normalise import InvalidPhoneNumber
from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation
from carely.privacy.fields import blind_indexes
from contacts.models import ChangeKind, Contact, ContactChange


def contact_list(
    *,
    organisation: Organisation | None,
    search: str = "",
    relationship_status: str = "",
) -> QuerySet[Contact]:
    """The organisation's contacts, newest change first.

    ``search`` is matched exactly against e-mail, phone and external id at once (through their
    blind indexes); whatever the text cannot be (an e-mail without "@", a phone that does not
    parse) is simply not tried.
    """
    organisation = require_organisation(organisation)
    contacts = Contact.objects.for_organisation(organisation)
    text = search.strip()
    if text:
        contacts = contacts.filter(_blind_search(text, organisation.default_phone_region))
    if relationship_status:
        contacts = contacts.filter(relationship_status=relationship_status)
    return contacts.order_by("-updated_at", "-pk")


def _blind_search(text: str, region: str) -> Q:
    indexes = blind_indexes(Contact)
    terms = Q(pk__in=[])  # matches nothing on its own
    candidates = {"external_id": text, "phone": text}
    if "@" in text:
        candidates["email"] = text
    for source, value in candidates.items():
        index = indexes[source]
        try:
            digest = index.digest(value, region=region)
        except InvalidPhoneNumber:
            continue
        if digest:  # None would mean "no value", which must not match every blank row
            terms |= Q(**{index.attname: digest})
    return terms


def contact_get(*, organisation: Organisation | None, contact_id: int) -> Contact:
    """The contact in this organisation, or 404: another tenant's id is simply not found."""
    contacts = Contact.objects.for_organisation(organisation).select_related(
        "guardian", "organisation"
    )
    return get_object_or_404(contacts, pk=contact_id)


@dataclass
class FieldChange:
    name: str
    before: Any
    after: Any


@dataclass
class HistoryEntry:
    change: ContactChange
    kind: str
    fields: list[FieldChange] = field(default_factory=list)

    @property
    def is_statement(self) -> bool:
        return self.kind == ChangeKind.SUPPLEMENTARY_STATEMENT


def contact_history(*, contact: Contact) -> list[HistoryEntry]:
    """Every change to the contact, oldest first (DSR-8): rectifications with before and after
    per field, supplementary statements, restrictions placed and lifted."""
    changes = ContactChange.objects.for_organisation(contact.organisation).filter(contact=contact)
    entries = []
    for change in changes.order_by("created_at", "pk"):
        diff = change.changed() if change.kind == ChangeKind.RECTIFICATION else {}
        entries.append(
            HistoryEntry(
                change=change,
                kind=change.kind,
                fields=[
                    FieldChange(name, values.get("before"), values.get("after"))
                    for name, values in sorted(diff.items())
                    if isinstance(values, dict)
                ],
            )
        )
    return entries
