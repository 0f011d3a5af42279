"""The second factor is required for admins, DPOs, platform roles and opted-in orgs (SEC-1)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import login
from tests.factories import PASSWORD
from tests.web.conftest import give_totp, totp_code

pytestmark = pytest.mark.obligation("SEC-1")

ACTIVATE = "/accounts/2fa/totp/activate/"


def test_activation_url_is_what_the_middleware_uses():
    assert reverse("mfa_activate_totp") == ACTIVATE


def test_admin_without_totp_is_sent_to_setup_from_every_page(client, admin_a):
    login(client, admin_a, mfa=False)
    for path in ("/", "/members/", "/members/1/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == ACTIVATE


def test_dpo_and_operator_without_totp_are_sent_to_setup(client, dpo_a, operator):
    for person in (dpo_a, operator):
        login(client, person, mfa=False)
        assert client.get("/")["Location"] == ACTIVATE


def test_setup_logout_and_language_stay_reachable(client, admin_a):
    login(client, admin_a, mfa=False)
    assert client.get(ACTIVATE).status_code in (200, 302)
    assert client.post("/language/", {"language": "sl", "next": "/"}).status_code == 302
    assert client.get("/healthz").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_staff_needs_no_second_factor_by_default(client, staff_a):
    login(client, staff_a, mfa=False)
    assert client.get("/").status_code == 200


def test_organisation_can_require_mfa_for_everyone(client, staff_a, org_a):
    org_a.require_mfa_for_all = True
    org_a.save()
    login(client, staff_a, mfa=False)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == ACTIVATE


def test_admin_with_totp_but_no_mfa_step_is_sent_back_to_sign_in(client, admin_a):
    give_totp(admin_a)
    login(client, admin_a, mfa=False)
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session


def test_admin_with_mfa_step_gets_in(client, admin_a):
    give_totp(admin_a)
    login(client, admin_a, mfa=True)
    assert client.get("/members/").status_code == 200


def test_real_totp_sign_in_end_to_end(client, admin_a):
    secret = give_totp(admin_a)
    response = client.post("/accounts/login/", {"login": admin_a.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session  # password alone does not sign in

    page = client.get(reverse("mfa_authenticate"))
    assert page.status_code == 200
    assert b'name="code"' in page.content

    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert response.status_code == 302
    assert response["Location"] == reverse("web:dashboard")
    methods = [m["method"] for m in client.session["account_authentication_methods"]]
    assert methods == ["password", "mfa"]
    assert client.get("/members/").status_code == 200


def test_real_totp_activation_end_to_end(client, admin_a):
    from allauth.mfa.models import Authenticator

    response = client.post("/accounts/login/", {"login": admin_a.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/")["Location"] == ACTIVATE

    page = client.get(ACTIVATE)
    assert page.status_code == 200
    secret = page.context["form"].secret
    assert page.context["totp_svg_data_uri"].startswith("data:image/svg+xml")

    response = client.post(ACTIVATE, {"code": totp_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=admin_a, type=Authenticator.Type.TOTP).exists()
    # Typing a valid code to activate proves the factor for this session: no second sign-in.
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert client.get("/members/").status_code == 200


def test_recovery_codes_are_shown_right_after_activation(client, admin_a):
    client.post("/accounts/login/", {"login": admin_a.email, "password": PASSWORD})
    secret = client.get(ACTIVATE).context["form"].secret
    response = client.post(ACTIVATE, {"code": totp_code(secret)}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("mfa_view_recovery_codes")
    assert len(response.context["unused_codes"]) == 10


def test_changing_an_older_authenticator_still_asks_for_the_password(client, admin_a):
    import datetime as dt

    from allauth.mfa.models import Authenticator

    secret = give_totp(admin_a)
    Authenticator.objects.filter(user=admin_a).update(
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )
    client.post("/accounts/login/", {"login": admin_a.email, "password": PASSWORD})
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    response = client.get(reverse("mfa_deactivate_totp"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
