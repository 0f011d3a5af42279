"""Run a database guard's SQL for the backend at hand (the append-only triggers of the audit log
and the consent ledger). PostgreSQL takes one script of functions and triggers; SQLite takes
statements one by one; other backends get no guard (only the model-level refusal)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def triggers_execute(schema_editor: Any, *, postgres: str, sqlite: Sequence[str]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # params=None: the script holds "%" (format strings in PL/pgSQL), not placeholders.
        schema_editor.execute(postgres, params=None)
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement)
