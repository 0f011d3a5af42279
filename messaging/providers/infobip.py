"""Infobip adapters: SMS (``POST /sms/3/messages``), e-mail (``POST /email/3/send``) and
WhatsApp (``/whatsapp/1/message/template`` and ``/text``), authenticated with
``Authorization: App <key>`` against the account's own base URL (EEA accounts have theirs).

Shapes follow ../shared/INTEGRATIONS.md section 1. Our message id goes out as ``messageId``
(``destinations[].messageId`` for SMS) so delivery reports and ``GET /sms/3/logs`` match rows
without a provider id stored first, which is what lets a crashed batch be reconciled (MSG-9).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from messaging.providers import http
from messaging.providers.base import (
    DeliveryReport,
    InboundMessage,
    LookupResult,
    OutgoingMessage,
    Provider,
    ProviderError,
    ProviderStatus,
    SendResult,
)

# Status group -> our status (INTEGRATIONS.md 1.7). PENDING means accepted, not yet delivered.
GROUP_STATUS = {1: "sent", 2: "undeliverable", 3: "delivered", 4: "expired", 5: "rejected"}
# 401/403 are a credentials problem of the whole account, not of these messages: wait long and
# retry, so fixing the key resumes sending instead of failing a whole campaign.
_CREDENTIALS_BACKOFF = 300.0
_LOOKUP_CHUNK = 100  # ids per logs request (the query string stays short)


def status_of(raw: Mapping[str, Any] | None) -> ProviderStatus:
    raw = raw or {}
    return ProviderStatus(
        group_id=raw.get("groupId"),
        group_name=str(raw.get("groupName") or ""),
        id=raw.get("id"),
        name=str(raw.get("name") or ""),
    )


def our_status(status: ProviderStatus) -> str:
    return GROUP_STATUS.get(status.group_id or 0, "sent")


def digits(number: str) -> str:
    """Infobip takes international numbers without the "+"."""
    return number.lstrip("+")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)  # 3.11 reads the "+0000" offset Infobip sends
    except ValueError:
        return None


class _Infobip(Provider):
    def _url(self, path: str) -> str:
        if not self.config.base_url:
            raise ProviderError(
                "no Infobip base URL: set INFOBIP_BASE_URL or the organisation's provider account",
                permanent=True,
                code="not_configured",
            )
        return f"{self.config.base_url.rstrip('/')}{path}"

    def _headers(self, content_type: str | None = "application/json") -> dict[str, str]:
        headers = {"Authorization": f"App {self.config.api_key}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _check(self, response: http.Response) -> Any:
        if 200 <= response.status < 300:
            return response.json()
        code, text = _error_of(response)
        wait = http.retry_after(response.headers)
        if response.status == 429:
            raise ProviderError(
                f"Infobip throttled the request ({code}): {text}",
                permanent=False,
                code=code or "E429",
                retry_after=wait,
                http_status=429,
            )
        if response.status in (401, 403):
            raise ProviderError(
                f"Infobip refused the credentials ({response.status} {code}): check the API key "
                "and its permissions",
                permanent=False,
                code=code or f"E{response.status}",
                retry_after=wait or _CREDENTIALS_BACKOFF,
                http_status=response.status,
            )
        if response.status >= 500 or response.status == 408:
            raise ProviderError(
                f"Infobip answered {response.status} ({code}): {text}",
                permanent=False,
                code=code or f"E{response.status}",
                retry_after=wait,
                http_status=response.status,
            )
        raise ProviderError(
            f"Infobip refused the request ({response.status} {code}): {text}",
            permanent=True,
            code=code or f"E{response.status}",
            http_status=response.status,
        )

    def _post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        response = http.request("POST", self._url(path), headers=self._headers(), body=body)
        return self._check(response)

    def _get(self, path: str, query: Sequence[tuple[str, Any]]) -> Any:
        url = f"{self._url(path)}?{urlencode(list(query))}"
        return self._check(http.request("GET", url, headers=self._headers(None)))

    def parse_delivery_reports(self, payload: Mapping[str, Any]) -> list[DeliveryReport]:
        reports = []
        for item in payload.get("results") or []:
            status = status_of(item.get("status"))
            error = item.get("error") or {}
            parts = item.get("messageCount", item.get("smsCount"))
            reports.append(
                DeliveryReport(
                    our_id=str(item.get("messageId") or ""),
                    provider_message_id=str(item.get("messageId") or ""),
                    status=our_status(status),
                    at=parse_time(item.get("doneAt")),
                    parts=int(parts) if parts is not None else None,
                    provider_status=status,
                    error_id=error.get("id"),
                    error_name=str(error.get("name") or ""),
                    error_permanent=error.get("permanent"),
                )
            )
        return reports


def _error_of(response: http.Response) -> tuple[str, str]:
    """The code and text of either error envelope (``errorCode`` for v3, ``requestError``)."""
    try:
        body = json.loads(response.body or b"{}")
    except ValueError:
        return "", response.body[:200].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return "", ""
    if "errorCode" in body:
        violations = "; ".join(
            f"{v.get('property')}: {v.get('violation')}" for v in body.get("violations") or []
        )
        text = str(body.get("description") or "") + (f" ({violations})" if violations else "")
        return str(body["errorCode"]), text
    exception = (body.get("requestError") or {}).get("serviceException") or {}
    return str(exception.get("messageId") or ""), str(exception.get("text") or "")


class InfobipSmsProvider(_Infobip):
    name = "infobip"
    max_batch = 1000

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        payload = {
            "messages": [
                {
                    "sender": self.config.sms_sender,
                    "destinations": [{"to": digits(m.to), "messageId": m.our_id}],
                    "content": {"text": m.body},
                }
                for m in messages
            ],
            "options": {"includeSmsCountInResponse": True},
        }
        answer = self._post_json("/sms/3/messages", payload)
        results = []
        for item in (answer or {}).get("messages") or []:
            status = status_of(item.get("status"))
            ours = our_status(status)
            results.append(
                SendResult(
                    our_id=str(item.get("messageId") or ""),
                    provider_message_id=str(item.get("messageId") or ""),
                    status="rejected" if ours == "rejected" else "sent",
                    parts=(item.get("details") or {}).get("messageCount"),
                    provider_status=status,
                    error_code=status.name if ours == "rejected" else "",
                )
            )
        return results

    def lookup(self, our_ids: Sequence[str]) -> dict[str, LookupResult]:
        found: dict[str, LookupResult] = {}
        for start in range(0, len(our_ids), _LOOKUP_CHUNK):
            chunk = our_ids[start : start + _LOOKUP_CHUNK]
            query = [("messageId", i) for i in chunk] + [("limit", 1000)]
            answer = self._get("/sms/3/logs", query)
            for item in (answer or {}).get("results") or []:
                our_id = str(item.get("messageId") or "")
                status = status_of(item.get("status"))
                found[our_id] = LookupResult(
                    our_id=our_id,
                    provider_message_id=our_id,
                    status=our_status(status),
                    parts=item.get("messageCount", item.get("smsCount")),
                    provider_status=status,
                )
        return found

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[InboundMessage]:
        return [
            InboundMessage(
                channel="sms",
                sender=f"+{digits(str(item.get('from') or ''))}",
                to=str(item.get("to") or ""),
                text=str(item.get("text") or ""),
                keyword=str(item.get("keyword") or ""),
                received_at=parse_time(item.get("receivedAt")),
                provider_message_id=str(item.get("messageId") or ""),
            )
            for item in payload.get("results") or []
        ]


class InfobipEmailProvider(_Infobip):
    """``/email/3/send`` is multipart and takes one content for all its recipients; ours is
    rendered per contact, so each message is its own request (``max_batch`` 1)."""

    name = "infobip"
    max_batch = 1

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if len(messages) != 1:
            raise ValueError("one e-mail per request: split with batches() first")
        results = []
        for m in messages:
            fields: list[tuple[str, str]] = [
                ("from", self.config.email_from),
                ("to", m.to),
                ("subject", m.subject),
                ("text", m.body),
                ("messageId", m.our_id),
            ]
            if m.html_body:
                fields.append(("html", m.html_body))
            if m.headers:
                fields.append(("headers", json.dumps(dict(m.headers))))
            headers = self._headers(content_type=None)
            answer = self._check(
                http.request("POST", self._url("/email/3/send"), headers=headers, fields=fields)
            )
            for item in (answer or {}).get("messages") or []:
                status = status_of(item.get("status"))
                ours = our_status(status)
                results.append(
                    SendResult(
                        our_id=m.our_id,
                        provider_message_id=str(item.get("messageId") or m.our_id),
                        status="rejected" if ours == "rejected" else "sent",
                        parts=1,
                        provider_status=status,
                        error_code=status.name if ours == "rejected" else "",
                    )
                )
        return results

    def lookup(self, our_ids: Sequence[str]) -> dict[str, LookupResult]:
        # GET /email/1/logs?messageId=... (one id a request; kept 48 hours by Infobip).
        found: dict[str, LookupResult] = {}
        for our_id in our_ids:
            answer = self._get("/email/1/logs", [("messageId", our_id)])
            for item in (answer or {}).get("results") or []:
                if str(item.get("messageId") or "") != our_id:
                    continue
                status = status_of(item.get("status"))
                found[our_id] = LookupResult(our_id, our_id, our_status(status), 1, status)
        return found


class InfobipWhatsAppProvider(_Infobip):
    """Template messages (registered with Meta) go many to a request; free-form text one at a
    time and only inside the 24-hour window (checked before dispatch)."""

    name = "infobip"
    max_batch = 100

    def batches(
        self, messages: Sequence[OutgoingMessage], limit: int
    ) -> list[list[OutgoingMessage]]:
        templated = [m for m in messages if m.whatsapp_template]
        texts = [[m] for m in messages if not m.whatsapp_template]
        return super().batches(templated, limit) + texts

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if len({bool(m.whatsapp_template) for m in messages}) > 1 or (
            len(messages) > 1 and not messages[0].whatsapp_template
        ):
            raise ValueError("one request per call: split with batches() first")
        sender = self.config.whatsapp_sender
        if not sender:
            raise ProviderError(
                "no WhatsApp sender: set MESSAGING_WHATSAPP_SENDER or the organisation's "
                "provider account",
                permanent=True,
                code="not_configured",
            )
        templated = [m for m in messages if m.whatsapp_template]
        results: list[SendResult] = []
        if templated:
            payload = {
                "messages": [
                    {
                        "from": sender,
                        "to": digits(m.to),
                        "messageId": m.our_id,
                        "content": {
                            "templateName": m.whatsapp_template["name"],
                            "templateData": {
                                "body": {"placeholders": list(m.whatsapp_template["placeholders"])}
                            },
                            "language": m.whatsapp_template["language"],
                        },
                    }
                    for m in templated
                    if m.whatsapp_template
                ]
            }
            answer = self._post_json("/whatsapp/1/message/template", payload)
            results.extend(_whatsapp_result(item) for item in (answer or {}).get("messages") or [])
        for m in messages:
            if m.whatsapp_template:
                continue
            text: dict[str, Any] = {
                "from": sender,
                "to": digits(m.to),
                "messageId": m.our_id,
                "content": {"text": m.body},
            }
            results.append(_whatsapp_result(self._post_json("/whatsapp/1/message/text", text)))
        return results

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[InboundMessage]:
        return [
            InboundMessage(
                channel="whatsapp",
                sender=f"+{digits(str(item.get('from') or ''))}",
                to=str(item.get("to") or ""),
                text=str((item.get("message") or {}).get("text") or ""),
                keyword="",
                received_at=parse_time(item.get("receivedAt")),
                provider_message_id=str(item.get("messageId") or ""),
            )
            for item in payload.get("results") or []
        ]


def _whatsapp_result(item: Mapping[str, Any]) -> SendResult:
    status = status_of(item.get("status"))
    ours = our_status(status)
    return SendResult(
        our_id=str(item.get("messageId") or ""),
        provider_message_id=str(item.get("messageId") or ""),
        status="rejected" if ours == "rejected" else "sent",
        parts=item.get("messageCount"),
        provider_status=status,
        error_code=status.name if ours == "rejected" else "",
    )
