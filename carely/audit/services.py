"""Writing audit events (SEC-4): one function, called in the same transaction as the change."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from carely.audit.chain import GENESIS, hash_of
from carely.audit.context import Actor, current_actor, current_request_id
from carely.audit.models import AuditChainHead, AuditEvent, chain_key_for

# Details are for ids, counts, codes and keyed hashes. These shapes are what personal data looks
# like when it slips in by mistake; refusing them loudly keeps the log free of it.
_LOOKS_PERSONAL = (
    re.compile(r"@"),  # an e-mail address
    re.compile(r"\+?\d[\d .()/-]{6,}\d"),  # a phone number or similar long digit run
)
_MAX_DETAIL_TEXT = 120
# An ISO date or time ("2026-04-30", "2026-04-30T23:59:59+02:00") is a long digit run too, but
# no one's phone number: deadlines are recorded as such.
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?$"
)
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
            if not _ISO_DATE.match(value) and any(p.search(value) for p in _LOOKS_PERSONAL):
                raise PersonalDataInAudit(
                    f"{where}: looks like an e-mail or phone number; record an id or a keyed hash"
                )


def _organisation_id(organisation: Any) -> int | None:
    if organisation is None:
        return None
    return organisation if isinstance(organisation, int) else organisation.pk


_EVENT_COLUMNS = (
    "chain_key",
    "seq",
    "organisation_id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "object_type",
    "object_id",
    "details",
    "request_id",
    "prev_hash",
    "hash",
)


def _locked_head(chain_key: str, organisation_id: int | None) -> tuple[int, int, str]:
    """(id, last_seq, last_hash) of the chain head, locked until the transaction ends."""
    table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    # SQLite has no row locks; its write transactions (IMMEDIATE here) serialise instead.
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = f"SELECT id, last_seq, last_hash FROM {table} WHERE chain_key = %s{lock}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [chain_key])
        row = cursor.fetchone()
        if row is None:
            # Two first writers may race here; the unique chain_key makes one insert a no-op.
            AuditChainHead.objects.bulk_create(
                [AuditChainHead(chain_key=chain_key, organisation_id=organisation_id)],
                ignore_conflicts=True,
            )
            cursor.execute(sql, [chain_key])
            row = cursor.fetchone()
    return row[0], row[1], row[2]


@lru_cache(maxsize=4)
def _append_sql(vendor: str) -> tuple[list[Field[Any, Any]], str, str | None]:
    fields = [cast("Field[Any, Any]", AuditEvent._meta.get_field(n)) for n in _EVENT_COLUMNS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    events = quote(AuditEvent._meta.db_table)
    heads = quote(AuditChainHead._meta.db_table)
    insert = f"INSERT INTO {events} ({columns}) VALUES ({marks}) RETURNING id"  # noqa: S608
    move = f"UPDATE {heads} SET last_seq = %s, last_hash = %s WHERE id = %s"  # noqa: S608
    if vendor == "postgresql":
        # One round trip instead of two while the head is locked.
        both = f"WITH e AS ({insert}), h AS ({move}) SELECT id FROM e"  # noqa: S608
        return fields, both, None
    return fields, insert, move


def _append(event: AuditEvent, head_id: int) -> None:
    """Insert the event and move the head, in SQL: this runs with the chain locked, so every
    microsecond here is a microsecond other writers of the same organisation wait."""
    fields, insert, move = _append_sql(connection.vendor)
    values: list[Any] = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]
    head_values: list[Any] = [event.seq, event.hash, head_id]
    with connection.cursor() as cursor:
        if move is None:
            cursor.execute(insert, [*values, *head_values])
            event.pk = cursor.fetchone()[0]
        else:
            cursor.execute(insert, values)
            event.pk = cursor.fetchone()[0]
            cursor.execute(move, head_values)
    event._state.adding = False
    event._state.db = connection.alias


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
        head_id, last_seq, last_hash = _locked_head(chain_key, organisation_id)
        event = AuditEvent(
            chain_key=chain_key,
            seq=last_seq + 1,
            organisation_id=organisation_id,
            occurred_at=timezone.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            action=action,
            object_type=object_type,
            object_id="" if object_id in (None, "") else str(object_id),
            details=details,
            request_id=current_request_id(),
            prev_hash=last_hash or GENESIS,
        )
        event.hash = hash_of(event)
        _append(event, head_id)
    return event
