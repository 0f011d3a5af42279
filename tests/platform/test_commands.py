"""Scripting commands print JSON an operator's script can rely on."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from carely.orgs.models import Contract, Membership, Organisation, User
from carely.orgs.roles import Role


def _json(*args, **kwargs):
    out = StringIO()
    call_command(*args, "--json", stdout=out, **kwargs)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_create_organisation_prints_id_and_slug_and_makes_an_admin():
    result = _json("create_organisation", "Zdravstveni dom Bled", "--admin-email", "Ana@Bled.si")
    organisation = Organisation.objects.get(pk=result["id"])
    assert result["slug"] == organisation.slug == "zdravstveni-dom-bled"
    membership = Membership.objects.get(organisation=organisation)
    assert membership.role == Role.ORG_ADMIN
    assert membership.user.email == "ana@bled.si"
    assert membership.user.check_password(result["admin"]["temporary_password"])
    assert Contract.objects.filter(organisation=organisation).count() == 1


@pytest.mark.django_db
def test_create_organisation_explains_bad_input():
    with pytest.raises(CommandError, match="not a valid e-mail"):
        call_command("create_organisation", "X", "--admin-email", "not-an-email")
    call_command(
        "create_organisation", "X", "--admin-email", "a@x.si", "--slug", "x", stdout=StringIO()
    )
    with pytest.raises(CommandError, match="slug 'x' is already used"):
        call_command("create_organisation", "Y", "--admin-email", "b@x.si", "--slug", "x")
    with pytest.raises(CommandError, match="--activation-date must look like"):
        call_command(
            "create_organisation", "Z", "--admin-email", "c@x.si", "--activation-date", "1.1.2026"
        )


@pytest.mark.django_db
def test_bootstrap_demo_runs_once_and_prints_logins_with_mfa(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = _json("bootstrap_demo")
    second = _json("bootstrap_demo")
    assert Organisation.objects.filter(slug="demo-clinic").count() == 1
    assert first["organisation"]["created"] is True and second["organisation"]["created"] is False
    by_role = {u["role"]: u for u in second["users"]}
    assert set(by_role) == {"staff", "org_admin", "dpo", "operator", "platform_dpo"}
    # Same logins each run, and each one really works.
    assert [u["password"] for u in first["users"]] == [u["password"] for u in second["users"]]
    for entry in second["users"]:
        assert User.objects.get(email=entry["email"]).check_password(entry["password"])
    # Roles that must pass MFA come with what a person needs to pass it.
    for role in ("org_admin", "dpo", "operator", "platform_dpo"):
        assert by_role[role]["totp_secret"] and by_role[role]["recovery_code"]
    assert "totp_secret" not in by_role["staff"]


@pytest.mark.django_db
def test_bootstrap_demo_is_refused_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="only runs on the embedded default"):
        call_command("bootstrap_demo")


@pytest.mark.django_db
def test_demo_mfa_code_gives_a_code_allauth_accepts(settings, tmp_path):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    settings.VAR_DIR = tmp_path
    _json("bootstrap_demo")
    result = _json("demo_mfa_code", "admin@demo.carely.test")
    row = Authenticator.objects.get(user__email="admin@demo.carely.test", type="totp")
    assert TOTP(row).validate_code(result["code"])
    with pytest.raises(CommandError, match="Only the demo logins"):
        call_command("demo_mfa_code", "someone@clinic.si")
