"""``carely.lib.salted``: the batch form of Django's ``salted_hmac`` signs exactly alike."""

from __future__ import annotations

import hmac

import pytest
from django.core import signing
from django.utils.crypto import salted_hmac

from carely.lib.salted import b64url, salted_hmac_key


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
@pytest.mark.parametrize("value", [b"", b"1.2.3", "žiga@example.test".encode()])
def test_derived_key_signs_as_salted_hmac(settings, algorithm, value):
    settings.SECRET_KEY = "a-test-secret-with-enough-length-for-django-checks"
    key = salted_hmac_key("carely.test.v1", algorithm=algorithm)
    expected = salted_hmac("carely.test.v1", value, algorithm=algorithm).digest()
    assert hmac.digest(key, value, algorithm) == expected
    other = salted_hmac_key("carely.test.v1", "another-secret", algorithm=algorithm)
    assert hmac.digest(other, value, algorithm) != expected  # the secret is part of the key


@pytest.mark.parametrize("size", [0, 1, 2, 3, 9, 32, 33])
def test_b64url_is_signings_encoding(size):
    data = bytes(range(250, 250 - size, -1)) if size else b""
    assert b64url(data) == signing.b64_encode(data).decode()
