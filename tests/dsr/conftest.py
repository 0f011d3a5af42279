"""DSR fixtures: the consent app's contacts and the messaging core's outbox-only providers."""

from __future__ import annotations

import pytest

from tests.consent.conftest import ana, api_client, bor, make_contact  # noqa: F401
from tests.messaging.conftest import fake_providers  # noqa: F401


@pytest.fixture
def dsr_api(org_a):
    return api_client(org_a, scopes=["dsr:read", "dsr:write"])
