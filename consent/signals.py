"""``consent_withdrawn``: the seam through which a withdrawal reaches work already queued (CON-2).

Sent once per withdrawal entry, after the transaction that wrote it commits (never for a rolled
back one), with keyword arguments:

- ``organisation_id``, ``contact_id``, ``entry_id``: ids;
- ``purpose``: the purpose's slug;
- ``channels``: the concrete channels it covers (``("sms", "email", "whatsapp")`` for "all");
- ``cause``: "" for the person's own withdrawal, "lapsed" or "objection" (``Cause``).

The messaging outbox connects a receiver that cancels that contact's queued messages for the
purpose and channels. The receiver only speeds things up: dispatch decides eligibility again for
each message from the ledger (MSG-5), so a receiver that fails (it is logged, not raised: the
withdrawal is already committed) cannot let a message through.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

consent_withdrawn = Signal()


def _send(sender: type, **kwargs: object) -> None:
    for receiver, result in consent_withdrawn.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "consent_withdrawn receiver %r failed for entry %s",
                receiver,
                kwargs.get("entry_id"),
                exc_info=result,
            )


def consent_withdrawn_send_on_commit(
    *,
    sender: type,
    organisation_id: int,
    contact_id: int,
    entry_id: int,
    purpose: str,
    channels: Sequence[str],
    cause: str,
) -> None:
    transaction.on_commit(
        partial(
            _send,
            sender,
            organisation_id=organisation_id,
            contact_id=contact_id,
            entry_id=entry_id,
            purpose=purpose,
            channels=tuple(channels),
            cause=cause,
        )
    )
