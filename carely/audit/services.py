"""Writing audit events (SEC-4): one function, called in the same transaction as the change."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from carely.audit.chain import GENESIS, event_hash
from carely.audit.context import Actor, current_actor, current_request_id
from carely.audit.models import AuditChainHead, AuditEvent, chain_key_for

# Details are for ids, counts, codes and keyed hashes. These shapes are what personal data looks
# like when it slips in by mistake; refusing them loudly keeps the log free of it.
_LOOKS_PERSONAL = (
    re.compile(r"@"),  # an e-mail address
    re.compile(r"\+?\d[\d .()/-]{6,}\d"),  # a phone number or similar long digit run
)
_MAX_DETAIL_TEXT = 120
# Keyed hashes go under keys ending in "_hash" and must look like one (hex or base64url digest).
_HASH_VALUE = re.compile(r"^(?:[0-9a-f]{64}|[A-Za-z0-9_-]{43})$")


class PersonalDataInAudit(ValueError):
    pass


def _check_details(details: dict[str, Any], path: str = "details") -> None:
    for key, value in details.items():
        where = f"{path}.{key}"
        if isinstance(value, dict):
            _check_details(value, where)
        elif isinstance(value, list | tuple):
            _check_details({str(i): item for i, item in enumerate(value)}, where)
        elif isinstance(value, float):
            raise PersonalDataInAudit(f"{where}: use an int or a string, not a float")
        elif isinstance(value, str) and str(key).endswith("_hash"):
            if value and not _HASH_VALUE.match(value):
                raise PersonalDataInAudit(f"{where}: not a keyed hash; use keyed_hash()")
        elif isinstance(value, str):
            if len(value) > _MAX_DETAIL_TEXT:
                raise PersonalDataInAudit(f"{where}: free text does not belong in the audit log")
            if any(pattern.search(value) for pattern in _LOOKS_PERSONAL):
                raise PersonalDataInAudit(
                    f"{where}: looks like an e-mail or phone number; record an id or a keyed hash"
                )


def _organisation_id(organisation: Any) -> int | None:
    if organisation is None:
        return None
    return organisation if isinstance(organisation, int) else organisation.pk


def _locked_head(chain_key: str, organisation_id: int | None) -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(chain_key=chain_key).first()
    if head is None:
        # Two first writers may race here; the unique chain_key makes one insert a no-op.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(chain_key=chain_key, organisation_id=organisation_id)],
            ignore_conflicts=True,
        )
        head = AuditChainHead.objects.select_for_update().get(chain_key=chain_key)
    return head


def audit_record(
    *,
    action: str,
    organisation: Any = None,
    object_type: str = "",
    object_id: object = "",
    details: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEvent:
    """Append one event to the organisation's chain (the platform chain when None).

    Call it inside the transaction that makes the change: the event and the change commit or
    roll back together, and the chain head stays locked only until that commit.
    """
    details = dict(details or {})
    _check_details(details)
    actor = actor or current_actor()
    organisation_id = _organisation_id(organisation)
    chain_key = chain_key_for(organisation_id)
    with transaction.atomic():
        head = _locked_head(chain_key, organisation_id)
        event = AuditEvent(
            chain_key=chain_key,
            seq=head.last_seq + 1,
            organisation_id=organisation_id,
            occurred_at=timezone.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            object_type=object_type,
            object_id="" if object_id in (None, "") else str(object_id),
            details=details,
            request_id=current_request_id(),
            prev_hash=head.last_hash or GENESIS,
        )
        event.hash = event_hash(
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
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=head.pk).update(last_seq=event.seq, last_hash=event.hash)
    return event
