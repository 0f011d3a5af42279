"""The embedded default: writes each message to the "carely.messaging" logger, as Django's
console e-mail backend prints e-mails, so someone running the embedded mode can read what would
have gone out. The message row itself is the stored copy.

It cannot be asked afterwards what it "sent" (``lookup`` answers None), so a crash between the
print and the record ends the row as failed with that reason, never a second print.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from messaging.providers.base import OutgoingMessage, Provider, ProviderStatus, SendResult
from messaging.segments import sms_encoding

logger = logging.getLogger("carely.messaging")


class ConsoleProvider(Provider):
    name = "console"
    max_batch = 500

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results = []
        for m in messages:
            subject = f" [{m.subject}]" if m.subject else ""
            headers = "".join(f"\n  {k}: {v}" for k, v in m.headers.items())
            logger.info("%s to %s%s:%s\n%s", m.channel, m.to, subject, headers, m.body)
            results.append(
                SendResult(
                    our_id=m.our_id,
                    provider_message_id=f"console-{m.our_id}",
                    status="sent",
                    parts=sms_encoding(m.body).parts if m.channel == "sms" else 1,
                    provider_status=ProviderStatus(name="PRINTED"),
                )
            )
        return results
