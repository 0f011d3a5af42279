"""Reads over contacts for the staff UI, always scoped to one organisation (TEN-1).

Names and other columns are encrypted at rest (SEC-8), so the database cannot search them; an
exact e-mail, phone number or external id is found through its blind index instead.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from carely.lib.normalise import InvalidPhoneNumber
from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation
from carely.privacy.fields import blind_indexes
from consent.selectors import values_in
from contacts.models import ChangeKind, Contact, ContactChange, ContactTag, Tag, tag_key


def contact_list(
    *,
    organisation: Organisation | None,
    search: str = "",
    relationship_status: str = "",
    tag: str = "",
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
    if tag.strip():
        contacts = contacts.filter(tag_filter_q(organisation, any_of=[tag]))
    return contacts_with_tag_names(contacts).order_by("-updated_at", "-pk")


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


# --- tags ------------------------------------------------------------------------------------


def contacts_with_tag_names(contacts: QuerySet[Contact]) -> QuerySet[Contact]:
    """``contacts`` with each one's tags loaded in one more query for the whole page (not one
    per contact): ``contact_tag_names(contact)`` then reads them."""
    return contacts.prefetch_related(
        Prefetch("tag_links", queryset=ContactTag.objects.only("contact_id", "name"))
    )


def contact_tag_names(contact: Contact) -> list[str]:
    """The contact's tag names in order; from the prefetch when there is one."""
    return sorted((link.name for link in contact.tag_links.all()), key=tag_key)


def _tag_ids(organisation: Organisation, names: list[str]) -> QuerySet[Tag, Any]:
    keys = {tag_key(" ".join(n.split())) for n in names}
    return Tag.objects.for_organisation(organisation).filter(key__in=keys).values("pk")


def tag_filter_q(
    organisation: Organisation | None,
    *,
    any_of: list[str] | tuple[str, ...] = (),
    all_of: list[str] | tuple[str, ...] = (),
) -> Q:
    """A ``Q`` over ``Contact`` for audiences and lists: the contact carries at least one tag of
    ``any_of`` (when given) and every tag of ``all_of``. Names match as tags do (case does not
    matter); a name the organisation has no tag for matches no contact. Each condition is an
    ``EXISTS`` subquery on the (tag, contact) index, so the Q stays lazy and composes with other
    filters and with ``Contact`` subqueries; only this organisation's tags are ever looked at.
    """
    organisation = require_organisation(organisation)
    links = ContactTag.objects.filter(contact=OuterRef("pk"))
    condition = Q()
    if any_of:
        condition &= Q(Exists(links.filter(tag__in=_tag_ids(organisation, list(any_of)))))
    for name in all_of:
        condition &= Q(Exists(links.filter(tag__in=_tag_ids(organisation, [name]))))
    return condition


def contacts_with_tags(
    organisation: Organisation | None,
    *,
    any_of: list[str] | tuple[str, ...] = (),
    all_of: list[str] | tuple[str, ...] = (),
) -> QuerySet[Contact]:
    """The organisation's contacts that ``tag_filter_q`` selects (all of them when both lists
    are empty); a lazy queryset, usable as a subquery."""
    return Contact.objects.for_organisation(organisation).filter(
        tag_filter_q(organisation, any_of=any_of, all_of=all_of)
    )


def tag_list(*, organisation: Organisation | None) -> QuerySet[Tag]:
    """The organisation's tags by name, each with ``contact_count``."""
    return Tag.objects.for_organisation(organisation).annotate(contact_count=Count("links"))


def tag_get(*, organisation: Organisation | None, tag_id: int) -> Tag:
    """The tag in this organisation, or 404: another tenant's tag is simply not found."""
    return get_object_or_404(Tag.objects.for_organisation(organisation), pk=tag_id)


class ContactValues:
    """Some columns of one contact, decrypted, without a model instance: what a batch of
    messages reads (the names the template uses, the address, the language). Attributes not
    loaded are empty. Building thousands of ``Contact`` instances, and decrypting columns a
    template never uses, was a third of a campaign's materialisation (bench/README.md)."""

    __slots__ = (
        "email",
        "first_name",
        "last_name",
        "organisation_id",
        "phone",
        "pk",
        "preferred_language",
    )

    def __init__(self, pk: int, organisation_id: int, **values: str) -> None:
        self.pk = pk
        self.organisation_id = organisation_id
        self.preferred_language = values.get("preferred_language", "")
        self.first_name = values.get("first_name", "")
        self.last_name = values.get("last_name", "")
        self.email = values.get("email", "")
        self.phone = values.get("phone", "")


# What ContactValues may carry beyond the id and the organisation.
CONTACT_VALUE_FIELDS = frozenset(ContactValues.__slots__) - {"pk", "organisation_id"}


def contact_values(
    *, organisation: Organisation | None, ids: Collection[int], fields: Collection[str]
) -> dict[int, ContactValues]:
    """``{id: ContactValues}`` of the organisation's contacts among ``ids`` (others are simply
    absent), with only ``fields`` loaded: one query, one decryption per encrypted field asked."""
    organisation = require_organisation(organisation)
    unknown = set(fields) - CONTACT_VALUE_FIELDS
    if unknown:
        raise ValueError(f"contact_values: no such value {sorted(unknown)}")
    if not ids:
        return {}
    names = sorted(fields)
    rows = (
        Contact.objects.for_organisation(organisation)
        .filter(values_in(Contact, "id", ids))
        .values_list("pk", *names)
    )
    org_id = organisation.pk
    return {
        row[0]: ContactValues(row[0], org_id, **dict(zip(names, row[1:], strict=True)))
        for row in rows
    }
