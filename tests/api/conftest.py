"""API fixtures: keys for the two standing organisations and a client that sends them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from carely.api.scopes import ALL_SCOPES
from carely.api.services import api_key_create


def bearer(client: APIClient, plaintext: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def make_key():
    def make(organisation, scopes=ALL_SCOPES, **kwargs):
        kwargs.setdefault("name", "Practice system")
        return api_key_create(organisation=organisation, scopes=list(scopes), **kwargs)

    return make


@pytest.fixture
def key_a(org_a, make_key):
    return make_key(org_a)


@pytest.fixture
def key_b(org_b, make_key):
    return make_key(org_b)


@pytest.fixture
def api_a(key_a):
    return bearer(APIClient(), key_a[1])


@pytest.fixture
def api_b(key_b):
    return bearer(APIClient(), key_b[1])


@pytest.fixture
def anon_api():
    return APIClient()
