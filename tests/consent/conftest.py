"""Consent fixtures: contacts in the two standing organisations, API keys, a helper to record."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from carely.api.scopes import ALL_SCOPES
from carely.api.services import api_key_create
from consent.services import consent_record
from contacts.services import contact_create


def make_contact(org, **data):
    data.setdefault("first_name", "Ana")
    if not any(data.get(k) for k in ("email", "phone")):
        data["email"] = f"{data['first_name'].lower()}@example.test"
    return contact_create(organisation=org, data=data, source_kind="staff")


def record(contact, status="given", *, purpose="marketing", channel="all", **kwargs):
    kwargs.setdefault("source", "staff")
    if status == "given":
        kwargs.setdefault("wording_version", "1")
    return consent_record(
        contact=contact, purpose=purpose, channel=channel, status=status, **kwargs
    )


def api_client(organisation, scopes=ALL_SCOPES) -> APIClient:
    _key, plaintext = api_key_create(
        organisation=organisation, name="Practice system", scopes=list(scopes)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def ana(org_a):
    return make_contact(
        org_a,
        first_name="Ana",
        email="ana@example.test",
        phone="+38641123456",
        external_id="K-1",
        relationship_status="active",
    )


@pytest.fixture
def bor(org_b):
    return make_contact(org_b, first_name="Bor", email="bor@example.test")
