"""Staff pages for API keys: persona matrix and the shown-once flow (SEC-3, TEN-1)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from carely.api.models import ApiKey
from tests.conftest import login

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("SEC-3")]


@pytest.fixture
def key_of_a(org_a, make_key):
    return make_key(org_a, name="Booking system")[0]


def _urls(key):
    return [
        ("get", reverse("api_keys:list")),
        ("get", reverse("api_keys:create")),
        ("post", reverse("api_keys:create")),
        ("get", reverse("api_keys:revoke", args=[key.pk])),
        ("post", reverse("api_keys:revoke", args=[key.pk])),
    ]


def test_anonymous_people_are_sent_to_sign_in(client, key_of_a):
    for method, url in _urls(key_of_a):
        response = getattr(client, method)(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
    assert not ApiKey.objects.get(pk=key_of_a.pk).is_revoked


@pytest.mark.parametrize("persona", ["staff_a", "dpo_a", "operator"])
def test_roles_without_the_permission_get_403(client, key_of_a, persona, request):
    login(client, request.getfixturevalue(persona))
    for method, url in _urls(key_of_a):
        assert (
            getattr(client, method)(url, {"name": "x", "scopes": ["files:read"]}).status_code == 403
        )
    assert ApiKey.objects.count() == 1 and not ApiKey.objects.get(pk=key_of_a.pk).is_revoked


@pytest.mark.obligation("TEN-1")
def test_another_organisations_admin_cannot_see_or_revoke_the_key(client, admin_b, key_of_a):
    login(client, admin_b)
    listing = client.get(reverse("api_keys:list"))
    assert listing.status_code == 200
    assert "Booking system" not in listing.content.decode()
    url = reverse("api_keys:revoke", args=[key_of_a.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert not ApiKey.objects.get(pk=key_of_a.pk).is_revoked


def test_admin_creates_a_key_sees_it_once_and_revokes_it(client, admin_a, org_a):
    login(client, admin_a)
    form = client.get(reverse("api_keys:create"))
    assert form.status_code == 200
    assert "contacts:write" in form.content.decode()
    response = client.post(
        reverse("api_keys:create"),
        {"name": "Booking system", "scopes": ["contacts:read", "messages:write"]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    plaintext = re.search(r'value="(cpk_[^"]+)"', html).group(1)
    assert "Copy it now, it will not be shown again." in html
    key = ApiKey.objects.get()
    assert key.organisation == org_a and key.created_by == admin_a
    assert key.scopes == ["contacts:read", "messages:write"]
    # The key works against the API...
    api = client.__class__()
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 200
    # ...and the list shows its prefix, never the key again.
    listing = client.get(reverse("api_keys:list")).content.decode()
    assert key.prefix in listing and plaintext not in listing
    confirm = client.get(reverse("api_keys:revoke", args=[key.pk]))
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    done = client.post(reverse("api_keys:revoke", args=[key.pk]))
    assert done.status_code == 302 and done["Location"] == reverse("api_keys:list")
    assert ApiKey.objects.get(pk=key.pk).is_revoked
    assert api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 401


def test_the_form_explains_what_is_wrong(client, admin_a):
    login(client, admin_a)
    response = client.post(reverse("api_keys:create"), {"name": "", "scopes": ["contacts:delete"]})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="field-error"') >= 2
    assert "contacts:delete" in html  # named as not a valid choice
    assert not ApiKey.objects.exists()


def test_pages_use_no_inline_styles_or_scripts(client, admin_a, key_of_a):
    login(client, admin_a)
    for url in (
        reverse("api_keys:list"),
        reverse("api_keys:create"),
        reverse("api_keys:revoke", args=[key_of_a.pk]),
    ):
        html = client.get(url).content.decode()
        assert " style=" not in html
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
