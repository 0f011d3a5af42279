"""Absolute links to the patient's own pages, for messages sent from anywhere (CON-2, RFC 8058).

Messages are built in workers without a request, so the origin comes from
``settings.CARELY_PUBLIC_BASE_URL``. Messaging uses ``list_unsubscribe_headers`` for every
marketing e-mail and ``unsubscribe_url`` for the visible link (and in SMS).
"""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.urls import reverse

from consent.tokens import unsubscribe_token_make
from contacts.models import Contact

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
    token = unsubscribe_token_make(contact, purpose)
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
