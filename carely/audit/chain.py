"""Hashing and verification of the audit chains (SEC-4).

Each event's hash is an HMAC over a canonical encoding of every column plus the previous event's
hash. HMAC rather than a bare SHA-256: someone with write access to the database alone cannot
rebuild a consistent chain after editing a row, because the key lives in the application's
environment (CARELY_HASH_KEY), not in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings

from carely.audit.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


@lru_cache(maxsize=4)
def _chain_key_bytes(hash_key: str) -> bytes:
    # Derived, so the audit chain never shares a key with API key digests or blind indexes.
    return hmac.new(hash_key.encode(), b"carely audit chain v1", hashlib.sha256).digest()


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    chain_key: str,
    seq: int,
    organisation_id: int | None,
    occurred_at: datetime,
    actor_type: str,
    actor_id: str,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any],
    request_id: str,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        [
            chain_key,
            seq,
            organisation_id,
            _timestamp(occurred_at),
            actor_type,
            actor_id,
            action,
            object_type,
            object_id,
            details,
            request_id,
            prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    key = _chain_key_bytes(settings.HASH_KEY)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def hash_of(event: AuditEvent) -> str:
    return event_hash(
        chain_key=event.chain_key,
        seq=event.seq,
        organisation_id=event.organisation_id,
        occurred_at=event.occurred_at,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        details=event.details,
        request_id=event.request_id,
        prev_hash=event.prev_hash,
    )


@dataclass(frozen=True)
class ChainReport:
    chain_key: str
    events: int
    ok: bool
    first_bad_seq: int | None = None
    first_bad_id: int | None = None
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain_key,
            "events": self.events,
            "ok": self.ok,
            "first_bad_seq": self.first_bad_seq,
            "first_bad_id": self.first_bad_id,
            "problem": self.problem,
        }


def _walk(chain_key: str) -> Iterator[AuditEvent]:
    return AuditEvent.objects.filter(chain_key=chain_key).order_by("seq").iterator(chunk_size=2000)


def chain_verify(chain_key: str) -> ChainReport:
    """Walk one chain from its first event; stop at the first event that does not fit."""
    expected_seq = 1
    prev_hash = GENESIS
    count = 0
    for event in _walk(chain_key):
        count += 1

        def bad(problem: str, event: AuditEvent = event, count: int = count) -> ChainReport:
            return ChainReport(chain_key, count, False, event.seq, event.pk, problem)

        if event.seq != expected_seq:
            return bad(f"expected entry #{expected_seq} but found #{event.seq}: rows are missing")
        if event.prev_hash != prev_hash:
            return bad("its link to the previous entry does not match: removed or reordered")
        if not hmac.compare_digest(hash_of(event), event.hash):
            return bad("its content does not match its hash: the row was altered")
        prev_hash = event.hash
        expected_seq += 1
    head = AuditChainHead.objects.filter(chain_key=chain_key).first()
    last_seq = expected_seq - 1
    last_hash = prev_hash if count else ""
    if head is not None and (head.last_seq != last_seq or head.last_hash != last_hash):
        if head.last_seq > last_seq:
            problem = f"the chain head records {head.last_seq} entries but only {last_seq} remain"
        else:
            problem = "the chain head does not match the last entry"
        return ChainReport(chain_key, count, False, last_seq + 1, None, problem)
    return ChainReport(chain_key, count, True)


def chain_keys() -> list[str]:
    keys = set(AuditChainHead.objects.values_list("chain_key", flat=True))
    keys |= set(AuditEvent.objects.values_list("chain_key", flat=True).distinct())
    return sorted(keys)
