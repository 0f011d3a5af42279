"""The interface every provider adapter implements, and the values that cross it.

An adapter knows one provider's HTTP shapes and nothing about the outbox: it sends a batch and
says, per message, what the provider answered; it reads the provider's delivery reports and
inbound messages into plain values; it looks messages up by our id for the reconciler. It never
touches the database.

Errors: a failed *request* raises ``ProviderError`` (``permanent`` decides retry; ``retry_after``
when the provider said how long to wait; ``uncertain`` when the request may have reached the
provider, e.g. a read timeout, so the messages must be reconciled, never resent). A *message* the
provider refused inside an accepted request comes back as a ``SendResult`` with ``status``
"rejected" and the provider's code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class ProviderConfig:
    """Credentials and sender ids for one organisation (its account, else the platform's)."""

    base_url: str = ""
    api_key: str = ""
    sms_sender: str = ""
    whatsapp_sender: str = ""
    email_from: str = ""
    # Identifies the credentials for the shared rate limit, without revealing them.
    account_key: str = "platform"

    @staticmethod
    def account_key_for(base_url: str, api_key: str) -> str:
        digest = hashlib.sha256(f"{base_url}\0{api_key}".encode()).hexdigest()[:16]
        return f"acct-{digest}"


@dataclass(frozen=True)
class OutgoingMessage:
    our_id: str
    channel: str
    to: str  # E.164 ("+386...") or an e-mail address
    body: str
    subject: str = ""
    html_body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    # {"name", "language", "placeholders"} for a WhatsApp template registered with Meta.
    whatsapp_template: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ProviderStatus:
    """The provider's own status, kept in the timeline (ids and names only)."""

    group_id: int | None = None
    group_name: str = ""
    id: int | None = None
    name: str = ""

    def as_detail(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "group_name": self.group_name,
            "status_id": self.id,
            "status_name": self.name,
        }


@dataclass(frozen=True)
class SendResult:
    our_id: str
    provider_message_id: str
    status: str  # "sent" (accepted) or "rejected"
    parts: int | None = None
    provider_status: ProviderStatus = ProviderStatus()
    error_code: str = ""


@dataclass(frozen=True)
class LookupResult:
    """What the provider knows of one of our ids (reconciler)."""

    our_id: str
    provider_message_id: str
    status: str  # one of our statuses: sent, delivered, undeliverable, expired, rejected
    parts: int | None = None
    provider_status: ProviderStatus = ProviderStatus()


@dataclass(frozen=True)
class DeliveryReport:
    our_id: str  # the messageId we sent
    provider_message_id: str
    status: str  # one of our statuses
    at: dt.datetime | None  # the report's own time (doneAt)
    parts: int | None
    provider_status: ProviderStatus
    error_id: int | None = None
    error_name: str = ""
    error_permanent: bool | None = None

    @property
    def event_key(self) -> str:
        """Same report twice, same key: a replayed webhook changes nothing."""
        at = self.at.isoformat() if self.at else ""
        return f"dlr:{self.status}:{self.provider_status.id}:{at}"


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    sender: str  # E.164 with "+"
    to: str
    text: str
    keyword: str
    received_at: dt.datetime | None
    provider_message_id: str


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str = "",
        retry_after: float | None = None,
        http_status: int | None = None,
        uncertain: bool = False,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.retry_after = retry_after
        self.http_status = http_status
        self.uncertain = uncertain


class Provider:
    """Base class of the adapters (see the module docstring)."""

    name: ClassVar[str] = ""
    # Messages per send() call the provider accepts (the dispatcher splits batches by it).
    max_batch: ClassVar[int] = 1

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def batches(
        self, messages: Sequence[OutgoingMessage], limit: int
    ) -> list[list[OutgoingMessage]]:
        """Split ``messages`` into groups that each go out in exactly one provider request, so
        a failed request never hides that an earlier one of the same call succeeded."""
        size = max(1, min(limit, self.max_batch))
        return [list(messages[i : i + size]) for i in range(0, len(messages), size)]

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One provider request for ``messages`` (a group from ``batches``)."""
        raise NotImplementedError

    def lookup(self, our_ids: Sequence[str]) -> dict[str, LookupResult] | None:
        """What the provider knows of these ids; ``None`` when it cannot be asked at all (the
        reconciler then ends such rows with a reason instead of guessing)."""
        return None

    def parse_delivery_reports(self, payload: Mapping[str, Any]) -> list[DeliveryReport]:
        raise NotImplementedError(f"{self.name} sends no delivery reports in this shape")

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[InboundMessage]:
        raise NotImplementedError(f"{self.name} sends no inbound messages in this shape")
