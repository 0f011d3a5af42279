"""Persona matrix for every web-shell page, and navigation by role (SEC-2)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import login
from tests.web.htmlscan import scan

pytestmark = pytest.mark.obligation("SEC-2")


def _member_of(user, org):
    return user.memberships.get(organisation=org)


def test_anonymous_is_sent_to_sign_in_from_every_page(client, admin_a, org_a):
    member_id = _member_of(admin_a, org_a).pk
    for path in ("/", "/members/", f"/members/{member_id}/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("account_login") + "?next="), path


@pytest.mark.parametrize("persona", ["staff_a", "dpo_a"])
def test_staff_and_dpo_may_not_open_members(client, request, persona, admin_a, org_a):
    user = request.getfixturevalue(persona)
    login(client, user)
    member_id = _member_of(admin_a, org_a).pk
    assert client.get("/").status_code == 200
    for path in ("/members/", f"/members/{member_id}/"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "not available to your role" in response.content.decode()
        assert reverse("web:dashboard") in response.content.decode()


def test_denied_role_change_changes_nothing(client, staff_a, admin_a, org_a):
    login(client, staff_a)
    admin_membership = _member_of(admin_a, org_a)
    response = client.post(f"/members/{admin_membership.pk}/", {"role": "staff"})
    assert response.status_code == 403
    admin_membership.refresh_from_db()
    assert admin_membership.role == "org_admin"


def test_admin_opens_members_and_detail(client, admin_a, staff_a, org_a):
    login(client, admin_a)
    assert client.get("/members/").status_code == 200
    response = client.get(f"/members/{_member_of(staff_a, org_a).pk}/")
    assert response.status_code == 200
    assert staff_a.email in response.content.decode()


def test_admin_of_other_org_gets_404_for_our_member(client, admin_b, staff_a, org_a):
    login(client, admin_b)
    response = client.get(f"/members/{_member_of(staff_a, org_a).pk}/")
    assert response.status_code == 404
    assert "could not find that page" in response.content.decode()


def test_operator_without_membership_sees_an_explaining_dashboard(client, operator):
    login(client, operator)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "not a member of any organisation" in body
    assert "Platform operator" in body
    assert 'href="/platform/admin/"' in body
    assert client.get("/members/").status_code == 403


def test_platform_dpo_without_membership_is_told_why(client, platform_dpo):
    login(client, platform_dpo)
    response = client.get("/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "not a member of any organisation" in body
    assert "/platform/admin/" not in body


def _nav(client) -> list[str]:
    return scan(client.get("/").content.decode()).nav_links


def test_navigation_shows_only_what_each_role_may_open(
    client, staff_a, dpo_a, admin_a, operator, platform_dpo
):
    expectations = {
        staff_a: ["/", "/contacts/", "/messages/", "/campaigns/"],
        dpo_a: [
            "/",
            "/contacts/",
            "/messages/",
            "/dsr/",
            "/audit/access-log/",
            "/privacy/records/",
        ],
        operator: ["/", "/platform/admin/"],
        platform_dpo: ["/", "/dsr/platform/", "/privacy/records/"],
    }
    for person, expected in expectations.items():
        login(client, person)
        assert _nav(client) == expected, person
    login(client, admin_a)
    admin_nav = _nav(client)
    assert admin_nav[:5] == ["/", "/contacts/", "/messages/", "/campaigns/", "/members/"]
    assert "/platform/admin/" not in admin_nav


def test_every_navigation_link_opens_for_its_role(client, staff_a, dpo_a, admin_a, operator):
    for person in (staff_a, dpo_a, admin_a, operator):
        login(client, person)
        for href in _nav(client):
            response = client.get(href)
            assert response.status_code == 200, (person, href, response.status_code)


def test_api_keys_link_only_for_admins_and_only_when_the_page_exists(client, admin_a, staff_a):
    from django.urls import NoReverseMatch

    try:
        api_keys = reverse("api_keys:list")
    except NoReverseMatch:
        api_keys = None
    login(client, admin_a)
    assert (api_keys in _nav(client)) if api_keys else len(_nav(client)) == 5
    login(client, staff_a)
    assert api_keys not in _nav(client)
