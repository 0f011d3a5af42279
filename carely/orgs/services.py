"""Writes over organisations, contracts and memberships."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from carely.audit.services import audit_record
from carely.orgs.models import Contract, Membership, Organisation, User
from carely.orgs.roles import Role


class SlugTaken(ValueError):
    pass


class LastAdminError(ValueError):
    """The change would leave the organisation without anyone who can manage its people."""


# Slugs that name a public page of the platform itself (/privacy-request/platform/), not a clinic.
RESERVED_SLUGS = frozenset({"platform"})


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "organisation"
    slug, n = base, 2
    while slug in RESERVED_SLUGS or Organisation.objects.filter(slug=slug).exists():
        slug = f"{base}-{n}"
        n += 1
    return slug


@transaction.atomic
def organisation_create(
    *, name: str, slug: str | None = None, activation_date: dt.date | None = None
) -> Organisation:
    name = name.strip()
    if not name:
        raise ValueError("An organisation needs a name")
    if slug:
        if slug in RESERVED_SLUGS:
            raise SlugTaken(f"The slug {slug!r} is reserved for the platform's own pages")
        if Organisation.objects.filter(slug=slug).exists():
            raise SlugTaken(f"The slug {slug!r} is already used by another organisation")
    else:
        slug = _unique_slug(name)
    organisation = Organisation.objects.create(name=name, slug=slug)
    if activation_date is not None:
        Contract.objects.create(organisation=organisation, activation_date=activation_date)
    return organisation


@transaction.atomic
def user_get_or_create(*, email: str, full_name: str = "", password: str | None = None) -> User:
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, full_name=full_name)
    return user


@transaction.atomic
def membership_create(
    *, organisation: Organisation, user: User, role: str = Role.STAFF
) -> Membership:
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}")
    membership, created = Membership.objects.get_or_create(
        organisation=organisation, user=user, defaults={"role": role}
    )
    previous = None if created else membership.role
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    if created or previous != role:
        action = "membership.created" if created else "membership.role_changed"
        _audit_membership(membership, action, previous)
    return membership


def _audit_membership(membership: Membership, action: str, previous: str | None) -> None:
    audit_record(
        action=action,
        organisation=membership.organisation,
        object_type="membership",
        object_id=membership.pk,
        details={"user_id": membership.user_id, "role": membership.role, "previous_role": previous},
    )


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    """Change a member's role; an organisation always keeps at least one organisation admin."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}")
    # Lock the organisation's admin rows so two admins demoting each other at once cannot both
    # succeed and leave nobody in charge.
    admins = list(
        Membership.objects.for_organisation(membership.organisation)
        .select_for_update()
        .filter(role=Role.ORG_ADMIN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if membership.role == Role.ORG_ADMIN and role != Role.ORG_ADMIN and admins == [membership.pk]:
        raise LastAdminError(
            _("An organisation needs at least one organisation admin, so this role stays.")
        )
    previous = membership.role
    if previous != role:
        membership.role = role
        membership.save(update_fields=["role"])
        _audit_membership(membership, "membership.role_changed", previous)
    return membership


@transaction.atomic
def organisation_suspend(*, organisation: Organisation, reason: str) -> Organisation:
    """Suspend for non-payment (TEN-3): reads go on, writes and sends stop, nothing is deleted."""
    reason = reason.strip()
    if not reason:
        raise ValueError("Say why the organisation is suspended; staff will read the reason")
    organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if organisation.suspended_at is None:
        organisation.suspended_at = timezone.now()
    organisation.suspension_reason = reason[:300]
    organisation.save(update_fields=["suspended_at", "suspension_reason"])
    # The reason is free text an operator typed; it stays on the organisation, not in the log.
    audit_record(
        action="organisation.suspended",
        organisation=organisation,
        object_type="organisation",
        object_id=organisation.pk,
    )
    return organisation


@transaction.atomic
def organisation_unsuspend(*, organisation: Organisation) -> Organisation:
    organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
    was_suspended = organisation.suspended_at is not None
    organisation.suspended_at = None
    organisation.suspension_reason = ""
    organisation.save(update_fields=["suspended_at", "suspension_reason"])
    if was_suspended:
        audit_record(
            action="organisation.unsuspended",
            organisation=organisation,
            object_type="organisation",
            object_id=organisation.pk,
        )
    return organisation
