"""Contact fixtures: API keys for the two standing organisations (see tests/api/conftest.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from carely.api.scopes import ALL_SCOPES
from carely.api.services import api_key_create
from carely.audit.context import Actor, acting_as


def _client(organisation, scopes=ALL_SCOPES) -> APIClient:
    _key, plaintext = api_key_create(
        organisation=organisation, name="Practice system", scopes=list(scopes)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def api_a(org_a):
    return _client(org_a)


@pytest.fixture
def api_b(org_b):
    return _client(org_b)


@pytest.fixture
def api_a_read_only(org_a):
    return _client(org_a, scopes=["contacts:read"])


@pytest.fixture
def as_staff_a(staff_a):
    with acting_as(Actor.user(staff_a.pk)):
        yield staff_a
