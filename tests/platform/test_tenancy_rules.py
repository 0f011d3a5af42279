"""Tenancy rules that enforce themselves (TEN-1).

Every model of ours either carries an ``organisation`` foreign key or is listed here with the reason
it is not tenant data, so a new table cannot quietly escape scoping.
"""

from __future__ import annotations

import pytest
from django.apps import apps

from carely.orgs.models import Membership
from carely.orgs.scoping import MissingOrganisation

OUR_APPS_PREFIXES = ("carely.", "contacts", "files", "consent", "messaging", "dsr", "retention")

NOT_TENANT_DATA = {
    "orgs.User": "platform accounts; the platform is the controller, memberships carry the tenant",
    "orgs.Organisation": "the tenant itself",
    "privacy.Subprocessor": "the platform's processors, the same for every organisation",
}


def _our_models():
    for model in apps.get_models():
        config = apps.get_app_config(model._meta.app_label)
        if config.name.startswith(OUR_APPS_PREFIXES) and not model._meta.abstract:
            yield model


@pytest.mark.obligation("TEN-1")
def test_every_model_belongs_to_an_organisation_or_says_why_not():
    offenders = []
    for model in _our_models():
        label = model._meta.label
        if label in NOT_TENANT_DATA:
            continue
        field_names = {f.name for f in model._meta.get_fields()}
        if "organisation" not in field_names:
            offenders.append(label)
    assert offenders == [], (
        f"{offenders} have no organisation foreign key; add one, or list the model in "
        "NOT_TENANT_DATA with the reason it holds no tenant data"
    )


@pytest.mark.obligation("TEN-1")
@pytest.mark.django_db
def test_a_missing_organisation_context_raises_instead_of_meaning_all(org_a, staff_a):
    with pytest.raises(MissingOrganisation):
        Membership.objects.for_organisation(None)
    assert list(Membership.objects.for_organisation(org_a)) == list(
        Membership.objects.filter(organisation=org_a)
    )


@pytest.mark.obligation("TEN-1")
@pytest.mark.django_db
def test_scoped_get_does_not_find_another_tenants_row(org_a, org_b, staff_b):
    membership_b = Membership.objects.get(user=staff_b)
    with pytest.raises(Membership.DoesNotExist):
        Membership.objects.get_for_organisation(org_a, pk=membership_b.pk)
