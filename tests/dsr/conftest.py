"""DSR fixtures: the consent app's contacts and the messaging core's outbox-only providers."""

from __future__ import annotations

import pytest

from tests.consent.conftest import ana, api_client, bor, make_contact  # noqa: F401
from tests.messaging.conftest import fake_providers  # noqa: F401


@pytest.fixture(autouse=True)
def _dsr_storage(settings, tmp_path):
    """Access ZIPs, evidence packs and attachments of a test go to its own folder, never to
    var/media (and a file a test leaves can never satisfy another test)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media-not-public/"},
        },
    }


@pytest.fixture
def dsr_api(org_a):
    return api_client(org_a, scopes=["dsr:read", "dsr:write"])
