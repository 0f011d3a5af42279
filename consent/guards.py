"""The database refuses to change a consent entry (CON-1), as it does for the audit log.

The model and its default queryset already refuse, but raw SQL and other clients bypass them.
Three changes stay possible because other rules need them, and none alters what was agreed:
- an encrypted column (``ip_address``, ``user_agent``, ``note``) gets a new ciphertext when the
  field key rotates (``carely.privacy.rotation``);
- ``recorded_by``, ``api_key`` and ``guardian`` become NULL when that account, key or guardian
  contact is deleted or erased (their foreign keys are SET_NULL);
- deleting a row: erasure of the contact (DSR-9) and the tenant purge (RET-5) delete entries
  through the ORM, as the same database role, so a trigger could not tell them from misuse.
  The application refuses every other deletion (``ConsentEntry.delete``, ``objects.delete``).
"""

from __future__ import annotations

from typing import Any

from carely.lib.triggers import triggers_execute

TABLE = "consent_consententry"

# Columns that may change only as described above.
_ROTATED = ("ip_address", "user_agent", "note")
_NULLABLE = ("recorded_by_id", "api_key_id", "guardian_id")
# Every other column; SQLite has no row-to-JSON, so its trigger compares these one by one.
_FIXED = (
    "id",
    "organisation_id",
    "contact_id",
    "purpose_id",
    "channel",
    "status",
    "wording_id",
    "source",
    "cause",
    "recorded_at",
)

_EXCEPT = ", ".join(f"'{c}'" for c in (*_ROTATED, *_NULLABLE))
_ONLY_NULLED = " AND ".join(f"(NEW.{c} IS NULL OR NEW.{c} = OLD.{c})" for c in _NULLABLE)

POSTGRES_INSTALL = f"""
CREATE OR REPLACE FUNCTION carely_consent_entry_guard() RETURNS trigger AS $$
BEGIN
    -- to_jsonb covers columns added later too: only the listed ones may ever change.
    IF (to_jsonb(NEW) - ARRAY[{_EXCEPT}]) = (to_jsonb(OLD) - ARRAY[{_EXCEPT}])
       AND {_ONLY_NULLED} THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consent entries are append-only: UPDATE of entry % refused', OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_entry_append_only BEFORE UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION carely_consent_entry_guard();
"""

POSTGRES_REMOVE = f"""
DROP TRIGGER IF EXISTS consent_entry_append_only ON {TABLE};
DROP FUNCTION IF EXISTS carely_consent_entry_guard();
"""

_CHANGED = " OR ".join(
    [
        *(f"NEW.{c} IS NOT OLD.{c}" for c in _FIXED),
        *(f"(NEW.{c} IS NOT NULL AND NEW.{c} IS NOT OLD.{c})" for c in _NULLABLE),
    ]
)
SQLITE_INSTALL = [
    f"""CREATE TRIGGER consent_entry_append_only BEFORE UPDATE ON {TABLE}
       WHEN {_CHANGED}
       BEGIN SELECT RAISE(ABORT, 'consent entries are append-only: UPDATE refused'); END"""
]
SQLITE_REMOVE = ["DROP TRIGGER IF EXISTS consent_entry_append_only"]


def install(schema_editor: Any) -> None:
    triggers_execute(schema_editor, postgres=POSTGRES_INSTALL, sqlite=SQLITE_INSTALL)


def remove(schema_editor: Any) -> None:
    triggers_execute(schema_editor, postgres=POSTGRES_REMOVE, sqlite=SQLITE_REMOVE)
