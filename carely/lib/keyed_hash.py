"""Keyed hashes (HMAC-SHA256 with the blind-index key) for equality without the plaintext.

One function serves blind-index columns (SEC-8), the marketing suppression list that outlives
erasure (CON-6) and audit details: each passes a ``purpose``, which separates the domains, so an
e-mail hash can never be compared with a phone hash or an external id that happens to be equal.
Normalise the value first (``carely.lib.normalise``); the hash is of exactly the text given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from functools import lru_cache
from typing import Literal

from django.conf import settings  # lazy: safe to import while settings.py itself loads

from carely.lib.env import ConfigError

BLIND_INDEX_VARIABLE = "CARELY_BLIND_INDEX_KEY"
KEY_BYTES = 32

_PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# base64url without padding: 43 characters for the 32-byte digest.
COMPACT_LENGTH = 43
HEX_LENGTH = 64


def parse_blind_index_key(value: str, *, variable: str = BLIND_INDEX_VARIABLE) -> bytes:
    """The raw key from its base64 text (standard or URL-safe); errors never echo the key."""
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{variable} must be base64 (of at least {KEY_BYTES} random bytes)"
        ) from None
    if len(raw) < KEY_BYTES:
        raise ConfigError(f"{variable} must hold at least {KEY_BYTES} bytes, got {len(raw)}")
    return raw


@lru_cache(maxsize=4)
def _base_mac(raw_key: str) -> hmac.HMAC:
    return hmac.new(parse_blind_index_key(raw_key), digestmod=hashlib.sha256)


@lru_cache(maxsize=64)
def _purpose_mac(raw_key: str, purpose: str) -> hmac.HMAC:
    """The keyed MAC with ``purpose`` and its NUL already fed, per key text and purpose: copying
    it and feeding the value gives the same digest as feeding all three, without parsing the key
    or checking the purpose again on every call (a blind index is hashed per row of an import).
    Keyed by the key's text, so a changed setting (tests override it) gets a MAC of its own."""
    if not _PURPOSE.match(purpose):
        raise ValueError(f"keyed_hash purpose must be a short snake_case word, got {purpose!r}")
    mac = _base_mac(raw_key).copy()
    mac.update(purpose.encode("ascii") + b"\x00")
    return mac


def keyed_hash(value: str, *, purpose: str, encoding: Literal["base64", "hex"] = "base64") -> str:
    """HMAC-SHA256 of ``purpose``, a NUL and ``value`` under settings.BLIND_INDEX_KEY."""
    mac = _purpose_mac(settings.BLIND_INDEX_KEY, purpose).copy()
    mac.update(value.encode("utf-8"))
    digest = mac.digest()
    if encoding == "hex":
        return digest.hex()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
