"""Operators see API keys in the admin, never their digests, and cannot create them there."""

from __future__ import annotations

import pytest

from tests.conftest import login

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("SEC-3")]


def test_admin_lists_keys_without_digest_and_has_no_add(client, operator, org_a, make_key):
    key, plaintext = make_key(org_a, name="Booking system")
    login(client, operator)
    listing = client.get("/platform/admin/api/apikey/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert key.prefix in html and "Booking system" in html
    assert key.digest not in html and plaintext not in html
    detail = client.get(f"/platform/admin/api/apikey/{key.pk}/change/").content.decode()
    assert key.digest not in detail
    assert client.get("/platform/admin/api/apikey/add/").status_code == 403
