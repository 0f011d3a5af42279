"""Absolute links to the patient's own pages, for messages sent from anywhere (CON-2, RFC 8058).

Messages are built in workers without a request, so the origin comes from
``settings.CARELY_PUBLIC_BASE_URL``. Messaging uses ``list_unsubscribe_headers`` for every
marketing e-mail and ``unsubscribe_url`` for the visible link (and in SMS).
"""

from __future__ import annotations

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


def list_unsubscribe_headers(contact: Contact, purpose: str | None = None) -> dict[str, str]:
    """RFC 8058 headers for a marketing e-mail: one HTTPS URI that accepts the one-click POST.
    Both must be covered by the DKIM signature (the sending provider's job)."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(contact, purpose)}>",
        "List-Unsubscribe-Post": ONE_CLICK_BODY,
    }
