"""Sessions never reach another organisation's people (TEN-1)."""

from __future__ import annotations

import pytest

from carely.orgs.middleware import SESSION_KEY
from carely.orgs.roles import Role
from tests.conftest import login
from tests.factories import MembershipFactory

pytestmark = pytest.mark.obligation("TEN-1")


def test_switching_to_an_organisation_you_do_not_belong_to_is_404(client, admin_a, org_b):
    login(client, admin_a)
    response = client.post("/organisation/switch/", {"organisation": org_b.pk})
    assert response.status_code == 404
    assert SESSION_KEY not in client.session


def test_switching_with_nonsense_is_404(client, admin_a):
    login(client, admin_a)
    assert client.post("/organisation/switch/", {"organisation": "x"}).status_code == 404
    assert client.post("/organisation/switch/", {}).status_code == 404


def test_switch_is_post_only(client, admin_a, org_a):
    login(client, admin_a)
    assert client.get(f"/organisation/switch/?organisation={org_a.pk}").status_code == 405


def test_member_of_two_organisations_switches_between_them(client, admin_a, org_a, org_b):
    MembershipFactory(user=admin_a, organisation=org_b, role=Role.ORG_ADMIN)
    login(client, admin_a)
    page = client.get("/").content.decode()
    assert 'name="organisation"' in page  # the switcher appears for two memberships
    response = client.post("/organisation/switch/", {"organisation": org_b.pk})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session[SESSION_KEY] == org_b.pk
    assert "Clinic B" in client.get("/").content.decode()


def test_switcher_is_hidden_for_a_single_membership(client, staff_a):
    login(client, staff_a)
    assert 'name="organisation"' not in client.get("/").content.decode()


def test_members_list_never_shows_another_organisations_people(
    client, admin_a, staff_a, admin_b, staff_b
):
    login(client, admin_a)
    body = client.get("/members/").content.decode()
    assert staff_a.email in body and admin_a.email in body
    assert staff_b.email not in body and admin_b.email not in body


def test_current_organisation_cannot_come_from_query_or_body(
    client, admin_a, org_a, org_b, staff_b
):
    login(client, admin_a)
    for params in ({"organisation": org_b.pk}, {"organisation_id": org_b.pk}, {"org": "clinic-b"}):
        body = client.get("/members/", params).content.decode()
        assert staff_b.email not in body
        assert "Clinic A" in body
    other = staff_b.memberships.get().pk
    assert client.get(f"/members/{other}/", {"organisation": org_b.pk}).status_code == 404
    response = client.post(f"/members/{other}/", {"role": "org_admin", "organisation": org_b.pk})
    assert response.status_code == 404
    assert staff_b.memberships.get().role == "staff"


def test_role_change_on_another_organisations_member_is_404_and_changes_nothing(
    client, admin_b, staff_a, org_a
):
    login(client, admin_b)
    membership = staff_a.memberships.get(organisation=org_a)
    assert client.post(f"/members/{membership.pk}/", {"role": "org_admin"}).status_code == 404
    membership.refresh_from_db()
    assert membership.role == "staff"
