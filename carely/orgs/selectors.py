"""Reads over organisations and memberships, always scoped (TEN-1)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from carely.orgs.models import Membership, Organisation, User
from carely.orgs.scoping import require_organisation


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user)
        .select_related("organisation")
        .order_by("organisation__name", "pk")
    )


def membership_for_session(*, user: User, organisation_id: object) -> Membership | None:
    """The membership the person picked, else their first one; None for platform-only users."""
    memberships = membership_list_for_user(user=user)
    if organisation_id is not None:
        try:
            chosen = memberships.filter(organisation_id=int(str(organisation_id))).first()
        except ValueError:
            chosen = None
        if chosen is not None:
            return chosen
    return memberships.first()


def membership_list(*, organisation: Organisation | None) -> QuerySet[Membership]:
    return (
        Membership.objects.for_organisation(organisation)
        .select_related("user")
        .order_by("user__email", "pk")
    )


def membership_get(*, organisation: Organisation | None, membership_id: int) -> Membership:
    """The membership in this organisation, or 404: another tenant's id is not found."""
    return get_object_or_404(membership_list(organisation=organisation), pk=membership_id)


def organisation_get_by_slug(*, slug: str) -> Organisation:
    return Organisation.objects.get(slug=slug)


def organisation_member_count(*, organisation: Organisation | None) -> int:
    return Membership.objects.for_organisation(require_organisation(organisation)).count()
