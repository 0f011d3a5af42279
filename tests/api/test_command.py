"""create_api_key prints the key once, as JSON for scripts (SEC-3)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from carely.api.models import ApiKey
from carely.api.services import api_key_digest

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("SEC-3")]


def test_create_api_key_prints_id_key_and_scopes(org_a):
    out = StringIO()
    call_command(
        "create_api_key",
        "--org",
        "clinic-a",
        "--scopes",
        "contacts:read,dsr:write",
        "--name",
        "PMS",
        "--json",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    key = ApiKey.objects.get(pk=result["id"])
    assert result["scopes"] == ["contacts:read", "dsr:write"] == key.scopes
    assert key.digest == api_key_digest(result["key"]) and key.organisation == org_a
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {result['key']}")
    assert client.get("/api/v1/me").json()["organisation"]["slug"] == "clinic-a"


def test_create_api_key_refuses_unknown_scopes_and_organisations(org_a):
    with pytest.raises(CommandError, match="Unknown scope: contacts:delete"):
        call_command("create_api_key", "--org", "clinic-a", "--scopes", "contacts:delete")
    with pytest.raises(CommandError, match="No organisation with slug 'nope'"):
        call_command("create_api_key", "--org", "nope", "--scopes", "contacts:read")
    assert not ApiKey.objects.exists()


def test_create_api_key_human_output_says_it_is_shown_once(org_a):
    out = StringIO()
    call_command("create_api_key", "--org", "clinic-a", "--scopes", "files:read", stdout=out)
    assert "cannot be shown again" in out.getvalue()
