"""The endpoints providers call (MSG-7, CON-2): Infobip delivery reports and inbound messages,
Amazon SES notifications through SNS.

Each one authenticates, stores the raw body (``messaging.inbound.receipt_store``) and answers
at once; a Celery task applies it after commit. Infobip retries on anything but a 2xx, so a body
stored before (a retry) is answered 200 as well.

Infobip (INTEGRATIONS.md 1.6): its per-message URLs carry no signature, so a request must present
both the organisation's unguessable token in the URL and the secret of its subscription profile,
as Basic auth (the password) or the static header ``MESSAGING_WEBHOOK_SECRET_HEADER``. Both are
compared in constant time, and an unknown token and a wrong secret get the same 401: a caller
cannot learn that a token exists.

SES: SNS signs every message; the signature, its certificate's origin and the topic are checked
(``messaging.sns``) before anything is stored.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from carely.orgs.models import Organisation
from messaging import sns
from messaging.inbound import receipt_store
from messaging.models import ProviderAccount
from messaging.receipts import ReceiptSource

logger = logging.getLogger("carely.messaging.webhooks")

MAX_BODY_BYTES = 5 * 1024 * 1024  # 2,000 reports (the largest bucket Infobip sends) fit easily
_TOKEN_MAX = 64
# Compared against when the token is unknown, so that case costs the same as a wrong secret.
_DUMMY_SECRET = "carely-no-such-webhook-token-0000000000000000"


def _refused() -> HttpResponse:
    response = JsonResponse({"detail": "Authentication failed."}, status=401)
    response["WWW-Authenticate"] = 'Basic realm="carely-webhooks", charset="UTF-8"'
    return response


def _presented_secret(request: HttpRequest) -> str:
    header = request.headers.get(settings.MESSAGING_WEBHOOK_SECRET_HEADER, "")
    if header:
        return header
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic" or not value:
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    _user, _, password = decoded.partition(":")
    return password


def _account(token: str) -> ProviderAccount | None:
    if not token or len(token) > _TOKEN_MAX:
        return None
    return (
        ProviderAccount.objects.select_related("organisation").filter(webhook_token=token).first()
    )


def _authenticated_organisation(request: HttpRequest, token: str) -> Organisation | None:
    account = _account(token)
    expected = ""
    if account is not None:
        expected = account.webhook_secret or str(settings.INFOBIP_WEBHOOK_SECRET or "")
    presented = _presented_secret(request)
    matches = hmac.compare_digest(
        presented.encode("utf-8"), (expected or _DUMMY_SECRET).encode("utf-8")
    )
    if account is None or not expected or not presented or not matches:
        # The reason for the operator (never the token or what was presented); the caller gets
        # one answer for all of them.
        reason = (
            "unknown token"
            if account is None
            else "no webhook secret configured"
            if not expected
            else "no credentials"
            if not presented
            else "wrong secret"
        )
        logger.warning("Infobip webhook refused: %s", reason)
        return None
    return account.organisation


def _body(request: HttpRequest) -> bytes | None:
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return None
    body = request.body
    return body if len(body) <= MAX_BODY_BYTES else None


def _infobip(request: HttpRequest, token: str, source: str) -> HttpResponse:
    organisation = _authenticated_organisation(request, token)
    if organisation is None:
        return _refused()
    body = _body(request)
    if body is None:
        return JsonResponse({"detail": "The body is too large."}, status=413)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"detail": "The body is not JSON."}, status=400)
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        return JsonResponse({"detail": 'Expected a JSON object with a "results" list.'}, status=400)
    _receipt, created = receipt_store(organisation=organisation, source=source, body=body)
    return JsonResponse({"status": "accepted" if created else "already_received"}, status=200)


@csrf_exempt
@require_POST
def infobip_reports(request: HttpRequest, token: str) -> HttpResponse:
    """Delivery reports of SMS (v2/v3), e-mail and WhatsApp messages."""
    return _infobip(request, token, ReceiptSource.INFOBIP_REPORTS)


@csrf_exempt
@require_POST
def infobip_inbound(request: HttpRequest, token: str) -> HttpResponse:
    """Inbound SMS (MO_JSON_2) and WhatsApp messages: STOP replies withdraw consent."""
    return _infobip(request, token, ReceiptSource.INFOBIP_INBOUND)


@csrf_exempt
@require_POST
def ses_notifications(request: HttpRequest, token: str) -> HttpResponse:
    """SNS messages of the SES configuration set: subscription confirmations, bounces and
    complaints. SNS sends JSON as text/plain."""
    account = _account(token)
    if account is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    body = _body(request)
    if body is None:
        return JsonResponse({"detail": "The body is too large."}, status=413)
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"detail": "The body is not JSON."}, status=400)
    if not isinstance(envelope, dict):
        return JsonResponse({"detail": "Expected an SNS message (a JSON object)."}, status=400)
    try:
        sns.verify(envelope)
    except sns.SnsRefused as exc:
        logger.warning("SNS message refused: %s", exc.code)
        return JsonResponse({"detail": "The SNS message could not be verified."}, status=403)
    _receipt, created = receipt_store(
        organisation=account.organisation, source=ReceiptSource.SES_SNS, body=body
    )
    return JsonResponse({"status": "accepted" if created else "already_received"}, status=200)
