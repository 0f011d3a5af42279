"""Click tracking through the platform's own redirect (MSG-6, MSG-10): no third-party tracker.

A link in a campaign's text becomes ``<public base>/r/<token>/``. The token names the campaign,
the contact and the link's number, with a truncated HMAC under a key derived from SECRET_KEY for
this use only: it cannot be forged, and it is short, because in an SMS every character of a
link is paid for. The redirect records a ``clicked`` event on the contact's message of that
campaign (the first click per link; later ones only redirect) and sends the browser on.
"""

from __future__ import annotations

import hmac

from django.urls import reverse

from campaigns.models import Campaign, CampaignLink
from carely.lib.salted import b64url, salted_hmac_key
from consent.links import public_url
from contacts.models import Contact
from contacts.selectors import ContactValues

_SALT = "carely.campaigns.click.v1"
_MAC_BYTES = 9  # 72 bits: forging one needs ~2^71 tries against a rate-limited redirect


class ClickTokenInvalid(ValueError):
    pass


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _key() -> bytes:
    """This use's key, derived from SECRET_KEY as ``salted_hmac(_SALT, ...)`` derives it."""
    return salted_hmac_key(_SALT)


def _mac(body: str, key: bytes | None = None) -> str:
    return b64url(hmac.digest(key or _key(), body.encode(), "sha256")[:_MAC_BYTES])


def click_token_make(
    campaign_id: int, contact_id: int, number: int, *, key: bytes | None = None
) -> str:
    """``key``: ``_key()`` derived once for a batch of tokens."""
    body = f"{_b36(campaign_id)}.{_b36(contact_id)}.{_b36(number)}"
    return f"{body}.{_mac(body, key)}"


def click_token_read(token: str) -> tuple[int, int, int]:
    """``(campaign id, contact id, link number)``, or ``ClickTokenInvalid``."""
    parts = token.split(".")
    if len(parts) != 4:
        raise ClickTokenInvalid(token)
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(body), parts[3]):
        raise ClickTokenInvalid(token)
    try:
        campaign_id, contact_id, number = (int(p, 36) for p in parts[:3])
    except ValueError:
        raise ClickTokenInvalid(token) from None
    return campaign_id, contact_id, number


def click_url(token: str) -> str:
    return public_url(reverse("campaigns_click", kwargs={"token": token}))


class ClickTracker:
    """The ``track_links`` callable for one campaign: each distinct URL of the campaign gets a
    number (a ``CampaignLink``), each contact its own token.

    It never touches the database while messages are rendered (on PostgreSQL no other
    statement may run on a connection while a COPY is open, and the materialiser may render in
    a forked reader process). New URLs are numbered in memory and kept in ``pending``; the
    materialiser hands them to the batch that first used them, which writes them with its rows.
    """

    def __init__(self, campaign_id: int) -> None:
        self.campaign = Campaign.objects.only("pk", "organisation_id").get(pk=campaign_id)
        self.numbers: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        before, _, after = click_url("0.0.0.x").partition("0.0.0.x")
        self._before, self._after = before, after
        self._key = _key()
        self.refresh()

    def refresh(self) -> None:
        self.numbers = dict(
            CampaignLink.objects.filter(campaign=self.campaign).values_list("url", "number")
        )
        self.pending = {}

    def number_for(self, url: str) -> int:
        url = url[:2000]
        number = self.numbers.get(url)
        if number is None:
            number = max(self.numbers.values(), default=0) + 1
            self.numbers[url] = self.pending[url] = number
        return number

    def __call__(self, contact: Contact | ContactValues, url: str) -> str:
        number = self.number_for(url)
        token = click_token_make(self.campaign.pk, contact.pk, number, key=self._key)
        return f"{self._before}{token}{self._after}"


def click_url_maker(campaign_id: int) -> ClickTracker:
    return ClickTracker(campaign_id)
