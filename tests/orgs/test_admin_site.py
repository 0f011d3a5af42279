"""SEC-2: the Django admin is for platform operators only, behind the one allauth sign-in."""

from __future__ import annotations

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from carely.orgs.roles import PlatformRole
from tests.conftest import login
from tests.factories import UserFactory

pytestmark = pytest.mark.obligation("SEC-2")


def _with_totp(user):
    TOTP.activate(user, generate_totp_secret())
    return user


def test_operator_opens_the_admin(client, operator):
    login(client, _with_totp(operator))
    response = client.get("/platform/admin/")
    assert response.status_code == 200
    assert b"Platform administration" in response.content
    assert client.get("/platform/admin/orgs/organisation/").status_code == 200
    # Nothing is deleted from the admin: exit and retention flows own that.
    assert b"Delete" not in client.get("/platform/admin/orgs/organisation/").content


@pytest.mark.parametrize("persona", ["staff_a", "admin_a", "dpo_a", "platform_dpo"])
def test_everyone_else_is_kept_out(client, request, persona):
    user = _with_totp(request.getfixturevalue(persona))
    login(client, user)
    assert client.get("/platform/admin/").status_code == 403
    assert client.get("/platform/admin/orgs/organisation/").status_code == 403
    assert client.get(f"/platform/admin/orgs/user/{user.pk}/change/").status_code == 403


def test_is_staff_alone_does_not_open_it(client, db):
    user = _with_totp(UserFactory(is_staff=True, platform_role=PlatformRole.NONE))
    login(client, user)
    assert client.get("/platform/admin/").status_code == 403


def test_anonymous_goes_to_the_allauth_login(client, db):
    response = client.get("/platform/admin/orgs/organisation/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")


def test_admin_login_page_hands_over_to_allauth(client, db):
    response = client.get("/platform/admin/login/?next=/platform/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "next=/platform/admin/" in response["Location"]
