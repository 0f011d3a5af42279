"""Field encryption at rest (SEC-8, ADR 4): AES-256-GCM with a key ring.

A stored value is text, so it fits a TEXT column on SQLite and PostgreSQL::

    e1$<key id>$<base64url(96-bit nonce || ciphertext || 128-bit tag), unpadded>

``e1`` is the format version. The key id says which key of the ring decrypts it; the newest key
encrypts, every listed key decrypts, and ``manage.py privacy_rotate_keys`` moves rows to the newest
key. The associated data binds a value to its table and column, so a ciphertext copied into another
column (or another table) fails authentication instead of decrypting as someone else's data.

This module imports nothing from Django at import time: settings.py uses its parsers.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings  # lazy: safe to import while settings.py itself loads

from carely.lib.env import ConfigError

VERSION = "e1"
SEPARATOR = "$"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
FIELD_KEYS_VARIABLE = "CARELY_FIELD_KEYS"


class DecryptionError(Exception):
    """A stored value cannot be decrypted: wrong column, tampered, or its key left the ring."""


@dataclass(frozen=True)
class FieldKey:
    kid: str
    key: bytes = field(repr=False)
    aead: AESGCM = field(repr=False, compare=False)


@dataclass(frozen=True)
class Keyring:
    keys: tuple[FieldKey, ...]

    @property
    def newest(self) -> FieldKey:
        return self.keys[0]

    def get(self, kid: str) -> FieldKey | None:
        for key in self.keys:  # a ring holds one to three keys
            if key.kid == kid:
                return key
        return None


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64decode(text: str) -> bytes:
    """base64url (or standard base64), padded or not; a character outside the alphabet is a
    ``binascii.Error`` (a non-ASCII one a ``UnicodeEncodeError``), both ``ValueError``s. One
    call per encrypted value read, so without ``base64``'s extra copies."""
    data = text.encode("ascii").translate(_FROM_URLSAFE)
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)


# base64url without padding and without the extra copies of base64.urlsafe_b64encode (one per
# encrypted value; the tokens of carely.lib.salted use it too).
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def parse_field_keys(value: str, *, variable: str = FIELD_KEYS_VARIABLE) -> Keyring:
    """``"k2:<base64 32 bytes>,k1:<base64 32 bytes>"`` (newest first) into a key ring.

    Errors name the variable and the position of the bad key, never the key itself.
    """
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"{variable} must list at least one key as <id>:<base64 of 32 bytes>")
    keys: list[FieldKey] = []
    for position, item in enumerate(items, start=1):
        where = f"{variable}, key {position} of {len(items)}"
        kid, sep, encoded = item.partition(":")
        if not sep or not _KEY_ID.match(kid):
            raise ConfigError(
                f"{where}: write it as <id>:<base64>, the id 1-16 letters, digits, - or _"
            )
        try:
            raw = _b64decode(encoded.strip())
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where} ({kid}): the key is not valid base64") from None
        if len(raw) != KEY_BYTES:
            raise ConfigError(
                f"{where} ({kid}): the key must be {KEY_BYTES} bytes, got {len(raw)}; "
                'make one with: python -c "import os,base64;print(base64.b64encode(os.urandom(32))'
                '.decode())"'
            )
        if any(k.kid == kid for k in keys):
            raise ConfigError(f"{where}: key id {kid!r} is listed twice")
        keys.append(FieldKey(kid, raw, AESGCM(raw)))
    return Keyring(tuple(keys))


def new_field_key_text(kid: str = "k1") -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


def _new_key_base64() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def embedded_key_file(path: Path, *, make: str) -> str:
    """The key text kept in ``path`` (var/), created once with mode 0600 for the embedded mode.

    ``O_EXCL`` makes a second process that races the first read the winner's key instead of
    writing its own.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(new_field_key_text() if make == "field_keys" else _new_key_base64())
    return path.read_text().strip()


# --- using the ring -----------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _keyring_for(raw: str) -> Keyring:
    return parse_field_keys(raw)


def keyring() -> Keyring:
    """The ring from settings.FIELD_KEYS (parsed once per distinct value, so tests may override)."""
    return _keyring_for(settings.FIELD_KEYS)


def associated_data(table: str, column: str) -> bytes:
    return f"carely:{VERSION}:{table}.{column}".encode()


def encrypt(plaintext: str, aad: bytes, *, ring: Keyring | None = None) -> str:
    key = (ring or keyring()).newest
    nonce = os.urandom(NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
    return f"{VERSION}{SEPARATOR}{key.kid}{SEPARATOR}{b64url(nonce + sealed)}"


def split_token(token: str) -> tuple[str, str]:
    """(key id, payload) of a stored value, or DecryptionError when it is not one."""
    version, sep, rest = token.partition(SEPARATOR)
    kid, sep2, payload = rest.partition(SEPARATOR)
    if version != VERSION or not sep or not sep2 or not kid:
        raise DecryptionError(
            f"not an encrypted value of format {VERSION} (a plaintext or damaged cell)"
        )
    return kid, payload


def key_id_of(token: str) -> str:
    return split_token(token)[0]


def decrypt(token: str, aad: bytes, *, ring: Keyring | None = None) -> str:
    kid, payload = split_token(token)
    key = (ring or keyring()).get(kid)
    if key is None:
        where = aad.decode().removeprefix(f"carely:{VERSION}:")
        raise DecryptionError(
            f"{where}: the value was encrypted with key {kid!r}, which is not in "
            f"{FIELD_KEYS_VARIABLE}; put it back until privacy_rotate_keys has run"
        )
    try:
        blob = _b64decode(payload)
        plain = key.aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, binascii.Error, ValueError):
        where = aad.decode().removeprefix(f"carely:{VERSION}:")
        raise DecryptionError(
            f"{where}: the value does not authenticate; it was altered, or it was encrypted "
            "for another table or column"
        ) from None
    return plain.decode("utf-8")


def reencrypt(token: str, aad: bytes, *, ring: Keyring | None = None) -> str | None:
    """The value under the newest key, or None when it already uses it."""
    ring = ring or keyring()
    if key_id_of(token) == ring.newest.kid:
        return None
    return encrypt(decrypt(token, aad, ring=ring), aad, ring=ring)
