"""Unsubscribe tokens (CON-2, TEN-1): signed, not forgeable, bound to one organisation."""

from __future__ import annotations

import pytest
from django.core import signing

from consent.tokens import (
    SALT,
    UnsubscribeTokenInvalid,
    unsubscribe_token_make,
    unsubscribe_token_read,
)

pytestmark = pytest.mark.django_db


@pytest.mark.obligation("CON-2")
def test_a_token_reads_back_its_organisation_contact_and_purpose(org_a, ana):
    token = unsubscribe_token_make(ana, purpose="marketing")
    assert unsubscribe_token_read(token) == (org_a.pk, ana.pk, "marketing")
    assert unsubscribe_token_read(unsubscribe_token_make(ana)) == (org_a.pk, ana.pk, None)
    assert token.replace("-", "").replace("_", "").replace(":", "").isalnum()  # URL-safe


@pytest.mark.obligation("CON-2", "TEN-1")
def test_forged_altered_or_foreign_tokens_are_refused(org_a, org_b, ana, bor):
    token = unsubscribe_token_make(ana)
    payload, signature = token.rsplit(":", 1)
    for bad in (
        "",
        "garbage",
        token[:-2],
        f"{payload}:{'A' * len(signature)}",
        # Pointing at another organisation's contact without the key: the signature no longer fits.
        signing.dumps({"o": org_b.pk, "c": bor.pk}, salt="another-salt"),
        signing.dumps({"o": org_b.pk, "c": bor.pk}),  # a token signed for another use
        signing.dumps(["not", "a", "dict"], salt=SALT),
        signing.dumps({"o": str(org_b.pk), "c": bor.pk}, salt=SALT),
    ):
        with pytest.raises(UnsubscribeTokenInvalid, match="not valid"):
            unsubscribe_token_read(bad)
    # Two contacts never share a token, and one organisation's token names that organisation.
    assert unsubscribe_token_make(ana) != unsubscribe_token_make(bor)
    assert unsubscribe_token_read(unsubscribe_token_make(bor))[0] == org_b.pk
