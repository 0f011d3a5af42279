"""Database-level guards that keep the audit log append-only (SEC-4).

The model refuses save-after-insert and delete, but raw SQL and other clients bypass models, so the
database refuses too: triggers reject every UPDATE and DELETE of an audit event, and any change of
a chain head that does not move it forward. The one sanctioned removal is the exit purge of a
whole tenant (RET/TEN-4), which names the chain it may delete inside its transaction.

On PostgreSQL the permit is a transaction-local setting read by the trigger. SQLite has no session
settings, so its trigger asks a function the application registers on each of its connections;
any other client (the sqlite3 shell) lacks the function and its DELETE fails, which is the point.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction

from carely.lib.triggers import triggers_execute

PURGE_SETTING = "carely.audit_purge_chain"
_permitted: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "audit_purge_permitted", default=frozenset()
)

POSTGRES_INSTALL = f"""
CREATE OR REPLACE FUNCTION carely_audit_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('{PURGE_SETTING}', true) = OLD.chain_key THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_auditchainhead'
       AND NEW.chain_key = OLD.chain_key AND NEW.last_seq > OLD.last_seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION carely_audit_guard();
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION carely_audit_guard();
"""

POSTGRES_REMOVE = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_auditchainhead;
DROP FUNCTION IF EXISTS carely_audit_guard();
"""

SQLITE_INSTALL = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
       WHEN NOT carely_audit_purge_permitted(OLD.chain_key)
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END""",
    """CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_auditchainhead
       WHEN NEW.last_seq <= OLD.last_seq OR NEW.chain_key != OLD.chain_key
       BEGIN SELECT RAISE(ABORT, 'an audit chain head only moves forward'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_auditchainhead
       WHEN NOT carely_audit_purge_permitted(OLD.chain_key)
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END""",
]

SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    "DROP TRIGGER IF EXISTS audit_head_forward_only",
    "DROP TRIGGER IF EXISTS audit_head_no_delete",
]


def _purge_permitted(chain_key: str) -> int:
    permitted = _permitted.get()
    return int("*" in permitted or chain_key in permitted)


def register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: give each SQLite connection the permit function."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "carely_audit_purge_permitted", 1, _purge_permitted, deterministic=False
        )


@contextlib.contextmanager
def audit_purge_permit(chain_key: str) -> Iterator[None]:
    """Allow deleting one chain's events and head inside this block (tenant exit purge only).

    ``"*"`` permits every chain; only the test database flush uses it.
    """
    token = _permitted.set(_permitted.get() | {chain_key})
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql" and chain_key != "*":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config(%s, %s, true)", [PURGE_SETTING, chain_key])
            yield
    finally:
        _permitted.reset(token)


def install(schema_editor: Any) -> None:
    triggers_execute(schema_editor, postgres=POSTGRES_INSTALL, sqlite=SQLITE_INSTALL)


def remove(schema_editor: Any) -> None:
    triggers_execute(schema_editor, postgres=POSTGRES_REMOVE, sqlite=SQLITE_REMOVE)
