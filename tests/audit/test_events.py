"""SEC-4: the security-relevant acts already write audit events, and no event names a person."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from carely.audit.chain import chain_verify
from carely.audit.models import AuditEvent, chain_key_for
from carely.orgs import services
from carely.orgs.roles import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.obligation("SEC-4")

LOGIN_URL = "/accounts/login/"


def _actions(chain="platform"):
    return list(AuditEvent.objects.filter(chain_key=chain).values_list("action", flat=True))


def test_sign_in_and_sign_out_are_recorded(client, staff_a):
    response = client.post(LOGIN_URL, {"login": staff_a.email, "password": PASSWORD})
    assert response.status_code == 302
    client.post("/accounts/logout/")
    assert _actions() == ["auth.login", "auth.logout"]
    login = AuditEvent.objects.get(action="auth.login")
    assert (login.actor_type, login.actor_id, login.object_id) == (
        "user",
        str(staff_a.pk),
        str(staff_a.pk),
    )
    assert chain_verify("platform").ok


def test_failed_sign_in_records_a_keyed_hash_not_the_address(client, staff_a):
    client.post(LOGIN_URL, {"login": staff_a.email, "password": "wrong password"})
    client.post(LOGIN_URL, {"login": "nobody@example.si", "password": "wrong password"})
    failed = list(AuditEvent.objects.filter(action="auth.login_failed"))
    assert len(failed) == 2
    hashes = {event.details["login_hash"] for event in failed}
    assert len(hashes) == 2 and all(len(h) == 43 for h in hashes)
    assert all(event.actor_type == "anonymous" for event in failed)


def test_lockout_is_recorded(client, staff_a, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN_URL, {"login": staff_a.email, "password": "wrong password"})
    assert "auth.locked_out" in _actions()


def test_membership_and_role_changes_are_recorded(org_a):
    user = UserFactory()
    membership = services.membership_create(organisation=org_a, user=user, role=Role.STAFF)
    services.membership_create(organisation=org_a, user=user, role=Role.DPO)
    services.membership_create(organisation=org_a, user=user, role=Role.DPO)  # no change
    events = list(AuditEvent.objects.filter(chain_key=chain_key_for(org_a.pk)))
    assert [e.action for e in events] == ["membership.created", "membership.role_changed"]
    assert events[1].details == {"user_id": user.pk, "role": "dpo", "previous_role": "staff"}
    assert events[1].object_id == str(membership.pk)


def test_suspension_is_recorded_without_the_reason_text(org_a):
    services.organisation_suspend(organisation=org_a, reason="Invoice 2026-117 unpaid")
    services.organisation_unsuspend(organisation=org_a)
    assert _actions(chain_key_for(org_a.pk)) == [
        "organisation.suspended",
        "organisation.unsuspended",
    ]
    assert "2026-117" not in json.dumps(list(AuditEvent.objects.values()), default=str)


def test_the_audit_table_holds_no_email_phone_or_name(client, org_a, admin_a, staff_a):
    """Grep every column of every audit row for the people this test touched."""
    from carely.api.services import api_key_create, api_key_revoke

    staff_a.full_name = "Ana Novak"
    staff_a.save()
    client.post(LOGIN_URL, {"login": "marko.kranjc@example.si", "password": "x"})
    client.post(LOGIN_URL, {"login": "+386 41 123 456", "password": "x"})
    client.post(LOGIN_URL, {"login": staff_a.email, "password": PASSWORD})
    key, _plaintext = api_key_create(
        organisation=org_a, name="Ana's reception PC", scopes=["contacts:read"], created_by=admin_a
    )
    api_key_revoke(key=key)
    services.membership_create(organisation=org_a, user=staff_a, role=Role.DPO)
    assert AuditEvent.objects.count() >= 5, _actions() + _actions(chain_key_for(org_a.pk))
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditevent")
        dump = json.dumps(cursor.fetchall(), default=str).lower()
    for needle in [
        staff_a.email,
        admin_a.email,
        "marko.kranjc",
        "ana novak",
        "novak",
        "41 123 456",
        "41123456",
        _plaintext.lower(),
    ]:
        assert needle.lower() not in dump, needle
