import base64

import pytest

from tests.privacy_probe.models import ProbePatient


def key_text(kid: str, byte: int) -> str:
    return f"{kid}:{base64.b64encode(bytes([byte]) * 32).decode()}"


KEY_1 = key_text("k1", 1)
KEY_2 = key_text("k2", 2)

EMAIL = "Ana.Novak@Example.SI"
PHONE = "+386 41 123 456"


@pytest.fixture
def field_keys(settings):
    """Known keys for the test, so rotation can add and remove them."""
    settings.FIELD_KEYS = KEY_1
    return settings


@pytest.fixture
def make_patient():
    def make(org, **values):
        values.setdefault("first_name", "Ana")
        values.setdefault("last_name", "Novak")
        values.setdefault("email", EMAIL)
        values.setdefault("phone", PHONE)
        return ProbePatient.objects.create(organisation=org, **values)

    return make
