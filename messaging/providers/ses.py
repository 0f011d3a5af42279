"""Amazon SES (v2) for e-mail, through boto3's ``sesv2.send_email`` with ``Content.Simple``.

``Simple`` takes up to 15 headers, so List-Unsubscribe and List-Unsubscribe-Post (RFC 8058) are
set without building raw MIME; SES signs them with DKIM like the rest. Why boto3 and not
django-anymail: docs/adr/0010-ses-through-boto3.md.

SES has no way to ask afterwards whether it accepted a message under our id (``lookup`` answers
None): a crash between SES's answer and our record ends the row as failed with that reason
instead of risking a second copy. Our id travels as the ``carely-id`` e-mail tag so bounce and
complaint events (SNS) carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from django.conf import settings

from messaging.providers.base import (
    OutgoingMessage,
    Provider,
    ProviderError,
    ProviderStatus,
    SendResult,
)

# Errors that pass with time; everything else SES says about a message is final for it.
_TRANSIENT = {
    "TooManyRequestsException",
    "LimitExceededException",
    "SendingPausedException",
    "InternalFailure",
    "ServiceUnavailable",
    "ThrottlingException",
}
_ACCEPTED = ProviderStatus(name="ACCEPTED")
_clients: dict[tuple[str, str], Any] = {}


def _client() -> Any:
    region = str(settings.SES_REGION or "eu-central-1")
    endpoint = str(settings.SES_ENDPOINT_URL or "")
    key = (region, endpoint)
    if key not in _clients:
        _clients[key] = boto3.client(
            "sesv2",
            region_name=region,
            endpoint_url=endpoint or None,
            config=Config(
                retries={"max_attempts": 1, "mode": "standard"},  # dispatch owns retries
                connect_timeout=5,
                read_timeout=settings.MESSAGING_HTTP_TIMEOUT_SECONDS,
            ),
        )
    return _clients[key]


class SesEmailProvider(Provider):
    name = "ses"
    max_batch = 1  # one SendEmail call per message: ours are rendered per contact

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if len(messages) != 1:
            raise ValueError("one e-mail per request: split with batches() first")
        (m,) = messages
        body: dict[str, Any] = {"Text": {"Data": m.body, "Charset": "UTF-8"}}
        if m.html_body:
            body["Html"] = {"Data": m.html_body, "Charset": "UTF-8"}
        simple: dict[str, Any] = {"Subject": {"Data": m.subject, "Charset": "UTF-8"}, "Body": body}
        if m.headers:
            simple["Headers"] = [{"Name": k, "Value": v} for k, v in m.headers.items()]
        request: dict[str, Any] = {
            "FromEmailAddress": self.config.email_from,
            "Destination": {"ToAddresses": [m.to]},
            "Content": {"Simple": simple},
            "EmailTags": [{"Name": "carely-id", "Value": m.our_id}],
        }
        if settings.SES_CONFIGURATION_SET:
            request["ConfigurationSetName"] = settings.SES_CONFIGURATION_SET
        try:
            answer = _client().send_email(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            transient = code in _TRANSIENT or status == 429 or status >= 500
            raise ProviderError(
                f"SES refused the e-mail ({code}): {error.get('Message', '')}",
                permanent=not transient,
                code=code,
                http_status=status or None,
            ) from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise ProviderError(
                f"could not reach SES: {exc}", permanent=False, code="connect_failed"
            ) from exc
        except (ReadTimeoutError, BotoCoreError) as exc:
            raise ProviderError(
                f"no complete answer from SES ({exc.__class__.__name__}); it may have the e-mail",
                permanent=False,
                code="no_answer",
                uncertain=True,
            ) from exc
        return [SendResult(m.our_id, str(answer["MessageId"]), "sent", 1, _ACCEPTED)]
