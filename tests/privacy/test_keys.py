"""Keys for field encryption and blind indexes: parsing, embedded default, production (SEC-8)."""

import stat
from pathlib import Path

import pytest

from carely.lib.env import ConfigError
from carely.lib.keyed_hash import keyed_hash, parse_blind_index_key
from carely.privacy.crypto import (
    associated_data,
    decrypt,
    embedded_key_file,
    encrypt,
    parse_field_keys,
)
from tests.platform.test_settings import PRODUCTION_ENV as BASE_PRODUCTION_ENV
from tests.platform.test_settings import _setup
from tests.privacy.conftest import KEY_1, KEY_2

ROOT = Path(__file__).resolve().parents[2]
AAD = associated_data("table", "column")


def test_the_newest_key_encrypts_and_every_key_decrypts():
    old_ring = parse_field_keys(KEY_1)
    ring = parse_field_keys(f"{KEY_2}, {KEY_1}")
    old = encrypt("ana@example.si", AAD, ring=old_ring)
    new = encrypt("ana@example.si", AAD, ring=ring)
    assert old.startswith("e1$k1$") and new.startswith("e1$k2$")
    assert decrypt(old, AAD, ring=ring) == decrypt(new, AAD, ring=ring) == "ana@example.si"
    assert encrypt("x", AAD, ring=ring) != encrypt("x", AAD, ring=ring)  # random nonces


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must list at least one key"),
        ("k1", "key 1 of 1: write it as <id>:<base64>"),
        (f"{KEY_2},k1:not base64!", "CARELY_FIELD_KEYS, key 2 of 2 (k1): the key is not valid"),
        (f"{KEY_1},k2:AAAA", "key 2 of 2 (k2): the key must be 32 bytes, got 3"),
        (f"{KEY_1},{KEY_1}", "key id 'k1' is listed twice"),
    ],
)
def test_a_malformed_key_ring_names_the_variable_and_the_position(value, message):
    with pytest.raises(ConfigError, match="CARELY_FIELD_KEYS") as info:
        parse_field_keys(value)
    assert message in str(info.value)
    assert "AQEB" not in str(info.value)  # never echoes key material


def test_blind_index_key_must_be_long_enough():
    with pytest.raises(ConfigError, match="CARELY_BLIND_INDEX_KEY must hold at least 32"):
        parse_blind_index_key("c2hvcnQ=")
    assert len(parse_blind_index_key(KEY_1.split(":")[1])) == 32


def test_embedded_keys_are_made_once_and_readable_only_by_the_owner(tmp_path):
    path = tmp_path / "var" / "field_keys"
    first = embedded_key_file(path, make="field_keys")
    assert embedded_key_file(path, make="field_keys") == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_field_keys(first).newest.kid == "k1"
    bidx = embedded_key_file(tmp_path / "var" / "blind_index_key", make="blind_index_key")
    assert len(parse_blind_index_key(bidx)) == 32


def test_keyed_hash_is_separated_by_purpose_and_keyed(settings):
    email = keyed_hash("a@b.si", purpose="email")
    assert email != keyed_hash("a@b.si", purpose="external_id")
    assert len(email) == 43 and len(keyed_hash("a@b.si", purpose="email", encoding="hex")) == 64
    settings.BLIND_INDEX_KEY = KEY_2.split(":")[1]
    assert keyed_hash("a@b.si", purpose="email") != email
    with pytest.raises(ValueError, match="purpose"):
        keyed_hash("a@b.si", purpose="E-mail")


# The production environment of the settings tests, with this module's keys.
PRODUCTION_ENV = {
    **BASE_PRODUCTION_ENV,
    "CARELY_FIELD_KEYS": f"{KEY_2},{KEY_1}",
    "CARELY_BLIND_INDEX_KEY": KEY_1.split(":")[1],
}


@pytest.mark.obligation("SEC-8")
def test_production_needs_both_keys_and_names_the_missing_one(tmp_path):
    assert _setup(PRODUCTION_ENV, tmp_path).returncode == 0
    for name in ("CARELY_FIELD_KEYS", "CARELY_BLIND_INDEX_KEY"):
        env = {k: v for k, v in PRODUCTION_ENV.items() if k != name}
        result = _setup(env, tmp_path)
        assert result.returncode != 0
        assert f"{name} must be set" in result.stderr
    assert not (tmp_path / "field_keys").exists()  # production never generates keys


def test_production_stops_on_a_malformed_key_naming_its_position(tmp_path):
    result = _setup({**PRODUCTION_ENV, "CARELY_FIELD_KEYS": f"{KEY_2},k1:short"}, tmp_path)
    assert result.returncode != 0
    assert "CARELY_FIELD_KEYS, key 2 of 2 (k1)" in result.stderr
