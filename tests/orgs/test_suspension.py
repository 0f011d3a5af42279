"""TEN-3: a suspended organisation keeps read access; writes and sends are refused; nothing goes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from carely.orgs import services
from carely.orgs.models import Contract, Membership, Organisation
from carely.orgs.suspension import (
    OrganisationSuspended,
    suspension_check_send,
    suspension_check_write,
)
from tests.conftest import login

pytestmark = pytest.mark.obligation("TEN-3")


@pytest.fixture
def suspended_a(org_a):
    return services.organisation_suspend(organisation=org_a, reason="Invoice 2026-117 unpaid")


def test_suspend_records_when_and_why_and_deletes_nothing(org_a, staff_a, admin_a):
    Contract.objects.create(organisation=org_a, activation_date="2025-01-01")

    def counts():
        return Membership.objects.filter(organisation=org_a).count(), org_a.contracts.count()

    before = counts()
    organisation = services.organisation_suspend(organisation=org_a, reason="Unpaid invoices")
    assert organisation.is_suspended
    assert organisation.suspended_at is not None
    assert organisation.suspension_reason == "Unpaid invoices"
    assert counts() == before


def test_suspend_needs_a_reason(org_a):
    with pytest.raises(ValueError, match="why"):
        services.organisation_suspend(organisation=org_a, reason="  ")
    org_a.refresh_from_db()
    assert not org_a.is_suspended


def test_guards_refuse_writes_and_sends_with_a_reason_people_can_act_on(suspended_a):
    with pytest.raises(OrganisationSuspended) as write:
        suspension_check_write(suspended_a)
    assert "Invoice 2026-117 unpaid" in str(write.value)
    assert "You can still view everything" in str(write.value)
    with pytest.raises(OrganisationSuspended, match="sending messages"):
        suspension_check_send(suspended_a)


def test_guards_pass_for_an_active_organisation(org_a):
    suspension_check_write(org_a)
    suspension_check_send(org_a)


def test_staff_keep_reading_but_web_writes_are_refused(client, staff_a, suspended_a):
    login(client, staff_a)
    assert client.get("/").status_code == 200
    response = client.post("/", {"anything": "1"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "Invoice 2026-117 unpaid" in body
    assert "Nothing has been deleted" in body


def test_the_other_organisation_is_unaffected(client, staff_b, suspended_a):
    login(client, staff_b)
    # Not refused by the suspension guard (the dashboard itself may not accept POST).
    assert client.post("/", {"anything": "1"}).status_code != 403


def test_signing_out_stays_possible(client, staff_a, suspended_a):
    login(client, staff_a)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_lifting_the_suspension_reopens_writes(client, staff_a, suspended_a):
    services.organisation_unsuspend(organisation=suspended_a)
    login(client, staff_a)
    assert client.post("/", {"anything": "1"}).status_code != 403
    suspension_check_write(Organisation.objects.get(pk=suspended_a.pk))


def test_command_suspends_and_lifts(org_a):
    out = StringIO()
    call_command(
        "suspend_organisation", "--org", org_a.slug, "--reason", "Unpaid", "--json", stdout=out
    )
    payload = json.loads(out.getvalue())
    assert payload["suspended"] is True and payload["reason"] == "Unpaid"
    out = StringIO()
    call_command("suspend_organisation", "--org", org_a.slug, "--lift", "--json", stdout=out)
    assert json.loads(out.getvalue())["suspended"] is False
    with pytest.raises(CommandError, match="reason"):
        call_command("suspend_organisation", "--org", org_a.slug)
    with pytest.raises(CommandError, match="slug"):
        call_command("suspend_organisation", "--org", "nope", "--reason", "x")
