"""Members pages for organisation admins (SEC-2): list, detail, role change."""

from __future__ import annotations

import pytest

from carely.orgs.roles import Role
from carely.orgs.services import LastAdminError, membership_change_role
from tests.conftest import login
from tests.web.conftest import give_totp

pytestmark = pytest.mark.obligation("SEC-2")


def test_list_shows_role_mfa_and_last_sign_in(client, admin_a, staff_a, dpo_a):
    give_totp(dpo_a)
    login(client, admin_a)
    response = client.get("/members/")
    rows = {r["membership"].user.email: r for r in response.context["rows"]}
    assert set(rows) == {admin_a.email, staff_a.email, dpo_a.email}
    assert rows[dpo_a.email]["mfa"] is True
    assert rows[staff_a.email]["mfa"] is False
    body = response.content.decode()
    assert "Data protection officer" in body and "Never" in body


def test_members_list_query_count_does_not_grow_with_members(
    client, admin_a, org_a, django_assert_max_num_queries
):
    from tests.factories import MembershipFactory

    login(client, admin_a)
    client.get("/members/")
    MembershipFactory.create_batch(15, organisation=org_a)
    with django_assert_max_num_queries(12):
        assert client.get("/members/").status_code == 200


def test_admin_changes_a_role(client, admin_a, staff_a, org_a):
    login(client, admin_a)
    membership = staff_a.memberships.get(organisation=org_a)
    response = client.post(f"/members/{membership.pk}/", {"role": Role.DPO})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.DPO
    assert "The role was saved." in client.get(response["Location"]).content.decode()


def test_unknown_role_is_refused_with_a_field_error(client, admin_a, staff_a, org_a):
    login(client, admin_a)
    membership = staff_a.memberships.get(organisation=org_a)
    response = client.post(f"/members/{membership.pk}/", {"role": "superuser"})
    assert response.status_code == 400
    assert 'class="field-error"' in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.STAFF


def test_last_admin_cannot_demote_themselves(client, admin_a, org_a):
    login(client, admin_a)
    own = admin_a.memberships.get(organisation=org_a)
    response = client.post(f"/members/{own.pk}/", {"role": Role.STAFF})
    assert response.status_code == 400
    assert "at least one organisation admin" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.ORG_ADMIN


def test_an_admin_may_step_down_when_another_admin_remains(admin_a, org_a):
    from tests.factories import MembershipFactory

    MembershipFactory(organisation=org_a, role=Role.ORG_ADMIN)
    own = admin_a.memberships.get(organisation=org_a)
    membership_change_role(membership=own, role=Role.STAFF)
    own.refresh_from_db()
    assert own.role == Role.STAFF


def test_service_refuses_removing_the_last_admin(admin_a, org_a, admin_b):
    own = admin_a.memberships.get(organisation=org_a)
    with pytest.raises(LastAdminError):
        membership_change_role(membership=own, role=Role.DPO)


def test_role_change_is_audited_in_the_same_transaction(client, admin_a, staff_a, org_a):
    from carely.audit.models import AuditEvent

    login(client, admin_a)
    membership = staff_a.memberships.get(organisation=org_a)
    client.post(f"/members/{membership.pk}/", {"role": Role.DPO})
    event = AuditEvent.objects.filter(action="membership.role_changed").get()
    assert event.object_id == str(membership.pk)
    assert event.details == {"user_id": staff_a.pk, "role": "dpo", "previous_role": "staff"}
    assert event.organisation_id == org_a.pk
