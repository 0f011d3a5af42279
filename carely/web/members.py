"""Members of the current organisation, for its admins (Perm.USERS_MANAGE).

``membership_change_role`` is a write and belongs in carely/orgs/services.py; it lives here until
the orgs app takes it over.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carely.audit.services import audit_record
from carely.orgs import selectors
from carely.orgs.models import Membership
from carely.orgs.permissions import require
from carely.orgs.roles import Perm, Role


class LastAdminError(ValueError):
    """The change would leave the organisation without anyone who can manage its people."""


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
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
        # Same event and same transaction as carely.orgs.services.membership_create (SEC-4).
        audit_record(
            action="membership.role_changed",
            organisation=membership.organisation,
            object_type="membership",
            object_id=membership.pk,
            details={"user_id": membership.user_id, "role": role, "previous_role": previous},
        )
    return membership


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices)


def _mfa_active_user_ids(user_ids: list[int]) -> set[int]:
    from allauth.mfa.models import Authenticator

    return set(
        Authenticator.objects.filter(user_id__in=user_ids, type=Authenticator.Type.TOTP)
        .values_list("user_id", flat=True)
        .distinct()
    )


@require(Perm.USERS_MANAGE)
def member_list(request: HttpRequest) -> HttpResponse:
    organisation: Any = getattr(request, "organisation", None)
    memberships = list(selectors.membership_list(organisation=organisation))
    with_mfa = _mfa_active_user_ids([m.user_id for m in memberships])
    rows = [{"membership": m, "mfa": m.user_id in with_mfa} for m in memberships]
    return render(request, "web/members/list.html", {"rows": rows})


@require(Perm.USERS_MANAGE)
def member_detail(request: HttpRequest, membership_id: int) -> HttpResponse:
    organisation: Any = getattr(request, "organisation", None)
    membership = selectors.membership_get(organisation=organisation, membership_id=membership_id)
    form = RoleForm(request.POST or None, initial={"role": membership.role})
    if request.method == "POST" and form.is_valid():
        try:
            membership_change_role(membership=membership, role=form.cleaned_data["role"])
        except LastAdminError as exc:
            form.add_error("role", str(exc))
        else:
            messages.success(request, _("The role was saved."))
            return redirect("web:member_detail", membership_id=membership.pk)
    context = {
        "membership": membership,
        "form": form,
        "mfa": bool(_mfa_active_user_ids([membership.user_id])),
        "is_self": membership.user_id == request.user.pk,
    }
    status = 400 if form.errors else 200
    return render(request, "web/members/detail.html", context, status=status)
