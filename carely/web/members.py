"""Members of the current organisation, for its admins (Perm.USERS_MANAGE).

Staff accounts are personal data too: opening the list or one member writes access-log rows.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carely.audit.access_log import access_log_record, access_log_record_many
from carely.orgs import selectors
from carely.orgs.permissions import require
from carely.orgs.roles import Perm, Role
from carely.orgs.services import LastAdminError, membership_change_role

# What the member pages show about a person, as recorded in the access log.
MEMBER_FIELDS = ("full_name", "email", "role", "mfa", "last_login")


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
    access_log_record_many(
        organisation=organisation,
        subject_type="staff_user",
        subject_ids=[m.user_id for m in memberships],
        what=MEMBER_FIELDS,
    )
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
    if request.method == "GET":
        access_log_record(
            organisation=organisation,
            subject_type="staff_user",
            subject_id=membership.user_id,
            what=MEMBER_FIELDS,
        )
    context = {
        "membership": membership,
        "form": form,
        "mfa": bool(_mfa_active_user_ids([membership.user_id])),
        "is_self": membership.user_id == request.user.pk,
    }
    status = 400 if form.errors else 200
    return render(request, "web/members/detail.html", context, status=status)
