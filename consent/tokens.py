"""Unsubscribe tokens (CON-2, MSG-8): a signed, non-guessable reference to one contact of one
organisation, optionally for one purpose.

``django.core.signing`` with a salt of its own: the token is the payload and an HMAC-SHA256
under SECRET_KEY, so it cannot be forged or altered, and a token made for another use of the
same key (a session, a password reset) is not accepted here. The organisation id is inside the
signed payload: whoever reads a token must look the contact up in *that* organisation only, so
a token of one clinic can never reach another's contact. No expiry: an unsubscribe link in an
old e-mail must keep working (CON-2: withdrawing is as easy as giving).
"""

from __future__ import annotations

import hmac
import json
import zlib
from collections.abc import Callable

from django.core import signing

from carely.lib.salted import b64url, salted_hmac_key
from contacts.models import Contact
from contacts.selectors import ContactValues

SALT = "carely.consent.unsubscribe.v1"


class UnsubscribeTokenInvalid(ValueError):
    """The token is damaged, forged or not an unsubscribe token."""

    def __init__(self) -> None:
        super().__init__(
            "This unsubscribe link is not valid. It may have been cut short when it was copied; "
            "open it again from the message, or contact the clinic to unsubscribe."
        )


def unsubscribe_token_make(contact: Contact, purpose: str | None = None) -> str:
    """A URL-safe token for ``contact`` (and ``purpose``, a slug, or None for every purpose)."""
    payload: dict[str, object] = {"o": contact.organisation_id, "c": contact.pk}
    if purpose:
        payload["p"] = purpose
    return signing.dumps(payload, salt=SALT, compress=True)


class _BatchSigner(signing.TimestampSigner):
    """``signing.dumps``'s signer for the tokens of one batch of messages: the derived HMAC key
    is computed once instead of per token (two hashes a token saved), and every token of the
    batch carries the timestamp of its start. The tokens are byte for byte what
    ``signing.dumps`` makes in that second, so ``unsubscribe_token_read`` reads them unchanged."""

    def __init__(self) -> None:
        super().__init__(salt=SALT)
        self._stamp = super().timestamp()
        self._key = salted_hmac_key(f"{SALT}signer", self.key, algorithm=self.algorithm)

    def timestamp(self) -> str:
        return self._stamp

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        if key is not None and key != self.key:
            return super().signature(value, key)
        data = value.encode() if isinstance(value, str) else value
        return b64url(hmac.digest(self._key, data, self.algorithm))


def _json_int(value: object) -> str:
    return str(value) if type(value) is int else json.dumps(value)


def unsubscribe_token_maker() -> Callable[[Contact | ContactValues, str | None], str]:
    """``unsubscribe_token_make`` for many contacts at once (a campaign's batch): same tokens,
    a fraction of the work each. Use one maker for one batch, not for longer.

    It spells out ``Signer.sign_object`` for this payload (compact JSON of ``o``, ``c`` and
    ``p`` in that order, zlib only when that is shorter, base64url, the timestamp, the HMAC),
    with the JSON written by an f-string; the tests compare it with ``signing.dumps``."""
    signer = _BatchSigner()
    suffix = f"{signer.sep}{signer.timestamp()}"
    sep, key, algorithm = signer.sep, signer._key, signer.algorithm
    purposes: dict[str | None, str] = {}

    def make(contact: Contact | ContactValues, purpose: str | None = None) -> str:
        tail = purposes.get(purpose)
        if tail is None:
            tail = purposes[purpose] = (
                f',"p":{json.dumps(purpose, separators=(",", ":"))}}}' if purpose else "}"
            )
        data = f'{{"o":{_json_int(contact.organisation_id)},"c":{_json_int(contact.pk)}{tail}'
        raw = data.encode("latin-1")
        compressed = zlib.compress(raw)
        if len(compressed) < len(raw) - 1:
            value = f".{b64url(compressed)}{suffix}"
        else:
            value = f"{b64url(raw)}{suffix}"
        return f"{value}{sep}{b64url(hmac.digest(key, value.encode('ascii'), algorithm))}"

    return make


def unsubscribe_token_read(token: str) -> tuple[int, int, str | None]:
    """``(organisation_id, contact_id, purpose slug or None)``; raises
    ``UnsubscribeTokenInvalid`` for anything that is not a token this module made."""
    try:
        payload = signing.loads(str(token or "").strip(), salt=SALT)
    except signing.BadSignature:
        raise UnsubscribeTokenInvalid() from None
    if not isinstance(payload, dict):
        raise UnsubscribeTokenInvalid()
    organisation_id, contact_id = payload.get("o"), payload.get("c")
    purpose = payload.get("p")
    if not isinstance(organisation_id, int) or not isinstance(contact_id, int):
        raise UnsubscribeTokenInvalid()
    if purpose is not None and not isinstance(purpose, str):
        raise UnsubscribeTokenInvalid()
    return organisation_id, contact_id, purpose
