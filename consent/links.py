"""Absolute links to the patient's own pages, for messages sent from anywhere (CON-2, RFC 8058).

Messages are built in workers without a request, so the origin comes from
``settings.CARELY_PUBLIC_BASE_URL``. Messaging uses ``list_unsubscribe_headers`` for every
marketing e-mail and ``unsubscribe_url`` for the visible link (and in SMS).
"""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.urls import reverse

from consent.tokens import unsubscribe_token_make, unsubscribe_token_maker
from contacts.models import Contact
from contacts.selectors import ContactValues

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


def public_url(path: str) -> str:
    return f"{settings.CARELY_PUBLIC_BASE_URL.rstrip('/')}{path}"


def unsubscribe_url(contact: Contact, purpose: str | None = None) -> str:
    """The page that withdraws ``purpose`` (a slug; None: every purpose) after one click."""
    token = unsubscribe_token_make(contact, purpose)
    return public_url(reverse("consent_public:unsubscribe", kwargs={"token": token}))


def preferences_url(contact: Contact) -> str:
    token = unsubscribe_token_make(contact)
    return public_url(reverse("consent_public:preferences", kwargs={"token": token}))


def unsubscribe_mailto(contact: Contact, purpose: str | None = None) -> str | None:
    """The ``mailto:`` half of List-Unsubscribe (RFC 2369), or None without
    ``CARELY_UNSUBSCRIBE_MAILTO_DOMAIN``.

    The signed token rides in the subject, not in the address as ``unsubscribe+<token>@``: it
    is about 100 characters with ``:`` separators, and a local part may have at most 64 and no
    unquoted ``:`` (RFC 5321/5322), so such an address would be refused by some senders' servers.
    A mailbox that sends the unsubscribe mail uses the subject as given."""
    domain = getattr(settings, "CARELY_UNSUBSCRIBE_MAILTO_DOMAIN", "")
    if not domain:
        return None
    return _mailto(domain, unsubscribe_token_make(contact, purpose))


def _mailto(domain: str, token: str) -> str:
    return f"mailto:unsubscribe@{domain}?subject={quote(f'unsubscribe {token}', safe=':')}"


def list_unsubscribe_headers(contact: Contact, purpose: str | None = None) -> dict[str, str]:
    """RFC 8058 headers for a marketing e-mail: the HTTPS URI that accepts the one-click POST,
    first (RFC 8058 clients use it), then the mailto when a domain is configured.
    Both headers must be covered by the DKIM signature (the sending provider's job)."""
    uris = [f"<{unsubscribe_url(contact, purpose)}>"]
    mailto = unsubscribe_mailto(contact, purpose)
    if mailto:
        uris.append(f"<{mailto}>")
    return {
        "List-Unsubscribe": ", ".join(uris),
        "List-Unsubscribe-Post": ONE_CLICK_BODY,
    }


class UnsubscribeLinks:
    """``unsubscribe_url`` and ``list_unsubscribe_headers`` for the contacts of one batch (one
    purpose): the URL is resolved once and each contact's token signed with one derived key
    (``unsubscribe_token_maker``), instead of a ``reverse()`` and a key derivation per link.
    The same token serves a contact's visible link and both headers, as it does when they are
    made within the same second one at a time. Use one for one batch, not for longer."""

    _MARKER = "0carelytoken0"  # only URL-safe characters: reverse() leaves it as it is

    def __init__(self, purpose: str | None = None) -> None:
        self.purpose = purpose
        self._make = unsubscribe_token_maker()
        path = reverse("consent_public:unsubscribe", kwargs={"token": self._MARKER})
        before, _, self._after = path.partition(self._MARKER)
        self._before = public_url(before)
        self._domain = getattr(settings, "CARELY_UNSUBSCRIBE_MAILTO_DOMAIN", "")

    def token(self, contact: Contact | ContactValues) -> str:
        return self._make(contact, self.purpose)

    def url(self, token: str) -> str:
        # Tokens are base64url with ':' and '.', all of which reverse() leaves unquoted.
        return f"{self._before}{token}{self._after}"

    def headers(self, token: str) -> dict[str, str]:
        uris = [f"<{self.url(token)}>"]
        if self._domain:
            uris.append(f"<{_mailto(self._domain, token)}>")
        return {"List-Unsubscribe": ", ".join(uris), "List-Unsubscribe-Post": ONE_CLICK_BODY}
