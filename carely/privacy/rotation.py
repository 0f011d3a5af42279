"""Re-encrypt stored values under the newest field key (ADR 4), in batches, idempotently.

Rows are read with raw SQL, so values are never decrypted into model instances, and each value
is written back with ``UPDATE ... WHERE pk = %s AND column = <old ciphertext>``: a row changed by
someone else meanwhile is left alone (it was written under the newest key anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models, transaction

from carely.privacy.crypto import DecryptionError, Keyring, key_id_of, keyring, reencrypt
from carely.privacy.fields import EncryptedFieldMixin, encrypted_fields


@dataclass
class ModelRotation:
    rows_scanned: int = 0
    rows_rotated: int = 0
    values_rotated: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows_scanned": self.rows_scanned,
            "rows_rotated": self.rows_rotated,
            "values_rotated": self.values_rotated,
        }


def models_with_encrypted_fields() -> list[type[models.Model]]:
    found = [
        m
        for m in apps.get_models()
        if encrypted_fields(m) and not m._meta.proxy and m._meta.managed
    ]
    return sorted(found, key=lambda m: m._meta.label)


def _rotate_batch(
    model: type[models.Model],
    rows: list[tuple[Any, ...]],
    fields: list[Any],
    ring: Keyring,
    dry_run: bool,
    stats: ModelRotation,
) -> None:
    table, pk = _table_and_pk(model)
    for index, model_field in enumerate(fields, start=1):
        assert isinstance(model_field, EncryptedFieldMixin)
        aad = model_field.aad()
        changes: list[tuple[str, Any, str]] = []
        for row in rows:
            old = row[index]
            if not old:
                continue
            try:
                new = None if key_id_of(old) == ring.newest.kid else reencrypt(old, aad, ring=ring)
            except DecryptionError as exc:
                raise DecryptionError(f"{model._meta.label} row {row[0]}: {exc}") from None
            if new is not None:
                changes.append((new, row[0], old))
        stats.values_rotated += len(changes)
        if changes and not dry_run:
            column = connection.ops.quote_name(str(model_field.column))
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s",  # noqa: S608
                    changes,
                )
    stats.rows_rotated += sum(
        1 for row in rows if any(v and key_id_of(v) != ring.newest.kid for v in row[1:])
    )


def _table_and_pk(model: type[models.Model]) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), quote(str(model._meta.pk.column))


def rotate_model(model: type[models.Model], *, batch_size: int, dry_run: bool) -> ModelRotation:
    ring = keyring()
    fields = encrypted_fields(model)
    table, pk = _table_and_pk(model)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    stats = ModelRotation()
    last: Any = None
    while True:
        where = "" if last is None else f"WHERE {pk} > %s "
        sql = f"SELECT {pk}, {columns} FROM {table} {where}ORDER BY {pk} LIMIT %s"  # noqa: S608
        params = [batch_size] if last is None else [last, batch_size]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            if not rows:
                break
            stats.rows_scanned += len(rows)
            _rotate_batch(model, rows, fields, ring, dry_run, stats)
        last = rows[-1][0]
    return stats


def rotate_all(*, batch_size: int = 1000, dry_run: bool = False) -> dict[str, ModelRotation]:
    return {
        m._meta.label: rotate_model(m, batch_size=batch_size, dry_run=dry_run)
        for m in models_with_encrypted_fields()
    }
