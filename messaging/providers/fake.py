"""An outbox-only provider for tests: "sends" by appending to ``outbox`` and can be told to fail.

Like ``django.core.mail.outbox``, ``outbox`` is a module-level list the tests read. ``failures``
is a list of ``ProviderError`` raised by the next ``send`` calls, one each.
"""

from __future__ import annotations

from collections.abc import Sequence

from messaging.providers.base import (
    LookupResult,
    OutgoingMessage,
    Provider,
    ProviderError,
    ProviderStatus,
    SendResult,
)
from messaging.segments import sms_encoding

outbox: list[OutgoingMessage] = []
failures: list[ProviderError] = []

_ACCEPTED = ProviderStatus(1, "PENDING", 26, "PENDING_ACCEPTED")


class FakeProvider(Provider):
    name = "fake"
    max_batch = 100

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if failures:
            raise failures.pop(0)
        outbox.extend(messages)
        return [
            SendResult(
                our_id=m.our_id,
                provider_message_id=f"fake-{m.our_id}",
                status="sent",
                parts=sms_encoding(m.body).parts if m.channel == "sms" else 1,
                provider_status=_ACCEPTED,
            )
            for m in messages
        ]

    def lookup(self, our_ids: Sequence[str]) -> dict[str, LookupResult]:
        wanted = set(our_ids)
        return {
            m.our_id: LookupResult(m.our_id, f"fake-{m.our_id}", "sent", None, _ACCEPTED)
            for m in outbox
            if m.our_id in wanted
        }
