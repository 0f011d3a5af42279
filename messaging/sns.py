"""Amazon SNS message verification (INTEGRATIONS.md 2): the SES bounce and complaint webhook.

django-anymail does not verify SNS signatures, so this does, as AWS documents it:

- the string to sign is ``Name\\nValue\\n`` for a fixed list of keys in a fixed order
  (``Message, MessageId, Subject (if present), Timestamp, TopicArn, Type`` for a notification;
  ``Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type`` for a (un)subscription
  confirmation);
- ``SignatureVersion`` "1" is SHA1withRSA, "2" SHA256withRSA (PKCS#1 v1.5), ``Signature`` base64;
- the certificate comes from ``SigningCertURL``, which must be HTTPS on ``sns.<region>.amazonaws
  .com`` (``settings.SNS_CERT_URL_PATTERN``): a forged message naming its own certificate URL is
  refused before anything is fetched;
- the topic must be one of ``settings.SES_SNS_TOPIC_ARNS``.

Certificates are cached (process memory and the Django cache) by URL: AWS rotates them under a
new URL, so a cached one never goes stale. ``fetch`` is injectable for tests, which serve a
self-signed certificate from a loopback server and widen the URL pattern to reach it.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache

NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
CONFIRMATION_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_CACHE_SECONDS = 24 * 3600
_MAX_CERT_BYTES = 64 * 1024
_memory: dict[str, bytes] = {}

Fetcher = Callable[[str], bytes]


class SnsRefused(ValueError):
    """The message is not provably from SNS for an allowed topic. ``code`` is stable and safe to
    log; the message says what to check."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def url_allowed(url: str) -> bool:
    """Only AWS's own SNS endpoints over HTTPS (the pattern is a prefix match on scheme, host and
    the slash after it, so ``sns.eu-west-1.amazonaws.com.evil.example`` does not pass)."""
    return re.match(settings.SNS_CERT_URL_PATTERN, url) is not None


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    keys = CONFIRMATION_KEYS if message.get("Type") in CONFIRMATION_TYPES else NOTIFICATION_KEYS
    lines = []
    for key in keys:
        if key not in message or message[key] is None:
            if key == "Subject":
                continue  # optional, and then left out of the string entirely
            raise SnsRefused("incomplete", f"The SNS message lacks {key}.")
        lines.append(f"{key}\n{message[key]}\n")
    return "".join(lines).encode()


def _fetch_https(url: str) -> bytes:
    # Only called for URLs that passed url_allowed(); no redirects are followed to elsewhere
    # because urllib re-checks nothing, so the response must come from that URL itself.
    request = urllib.request.Request(url, headers={"User-Agent": "carely-sns-verify"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.geturl() != url:
            raise SnsRefused("cert_redirect", "The certificate URL redirected elsewhere.")
        return bytes(response.read(_MAX_CERT_BYTES + 1))


def certificate(url: str, *, fetch: Fetcher | None = None) -> x509.Certificate:
    if not url_allowed(url):
        raise SnsRefused(
            "cert_url_refused",
            "SigningCertURL is not HTTPS on sns.<region>.amazonaws.com; refusing to fetch it.",
        )
    pem = _memory.get(url)
    if pem is None:
        key = "sns-cert:" + url
        cached = cache.get(key)
        if cached is None:
            try:
                pem = (fetch or _fetch_https)(url)
            except SnsRefused:
                raise
            except OSError as exc:
                raise SnsRefused(
                    "cert_unavailable", f"Could not fetch the certificate: {exc}"
                ) from exc
            if len(pem) > _MAX_CERT_BYTES:
                raise SnsRefused("cert_invalid", "The certificate is implausibly large.")
            cache.set(key, pem, _CACHE_SECONDS)
        else:
            pem = bytes(cached)
        _memory[url] = pem
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        _memory.pop(url, None)
        raise SnsRefused(
            "cert_invalid", "The signing certificate is not a PEM certificate."
        ) from exc


def verify(message: Mapping[str, Any], *, fetch: Fetcher | None = None) -> None:
    """Raise ``SnsRefused`` unless ``message`` is signed by SNS for an allowed topic."""
    topic = str(message.get("TopicArn") or "")
    if topic not in settings.SES_SNS_TOPIC_ARNS:
        raise SnsRefused(
            "unknown_topic", "TopicArn is not in SES_SNS_TOPIC_ARNS; add it there if it is ours."
        )
    version = str(message.get("SignatureVersion") or "")
    algorithm = _HASHES.get(version)
    if algorithm is None:
        raise SnsRefused("signature_version", f"Unknown SignatureVersion {version[:5]!r}.")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnsRefused("signature_invalid", "Signature is not base64.") from exc
    data = string_to_sign(message)
    public_key = certificate(str(message.get("SigningCertURL") or ""), fetch=fetch).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsRefused("cert_invalid", "The signing certificate has no RSA key.")
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsRefused("signature_invalid", "The signature does not match the message.") from exc


def subscription_confirm(message: Mapping[str, Any], *, fetch: Fetcher | None = None) -> None:
    """Visit ``SubscribeURL`` (a verified confirmation), held to the same host rule."""
    url = str(message.get("SubscribeURL") or "")
    if not url_allowed(url):
        raise SnsRefused(
            "subscribe_url_refused", "SubscribeURL is not HTTPS on sns.<region>.amazonaws.com."
        )
    try:
        (fetch or _fetch_https)(url)
    except OSError as exc:
        raise SnsRefused("subscribe_failed", f"Could not confirm the subscription: {exc}") from exc


def cache_clear() -> None:
    _memory.clear()
