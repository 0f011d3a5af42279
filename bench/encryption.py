"""Cost of field encryption + blind indexes against a plain insert of the same rows (SEC-8).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/carely .venv/bin/python bench/encryption.py

Creates two scratch tables (dropped at the end) shaped like a contact: six personal fields
(first and last name, e-mail, phone, birth date, notes). The plain table stores them as text with
indexes on e-mail and phone; the encrypted one stores AES-GCM ciphertexts plus two indexed blind
indexes (HMAC of the normalised e-mail and phone), exactly as carely.privacy.fields does. Both
are filled with ``bulk_create`` in batches, object construction included, in the same run.
Prints one JSON object and a one-line summary. Runs on SQLite when DATABASE_URL is unset.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")

import django

django.setup()

from django.db import connection, models  # noqa: E402

from carely.privacy.fields import (  # noqa: E402
    BlindIndexField,
    EncryptedCharField,
    EncryptedDateField,
    EncryptedTextField,
)


class BenchPlainContact(models.Model):
    organisation_id = models.BigIntegerField()
    first_name = models.TextField()
    last_name = models.TextField()
    email = models.TextField(db_index=True)
    phone = models.TextField(db_index=True)
    birth_date = models.DateField(null=True)
    notes = models.TextField()

    class Meta:
        app_label = "privacy"
        db_table = "bench_plain_contact"
        managed = False

    def __str__(self) -> str:
        return f"bench row #{self.pk}"


class BenchEncryptedContact(models.Model):
    organisation_id = models.BigIntegerField()
    first_name = EncryptedCharField(max_length=100)
    last_name = EncryptedCharField(max_length=100)
    email = EncryptedCharField(max_length=254)
    email_bidx = BlindIndexField(source="email", kind="email")
    phone = EncryptedCharField(max_length=32)
    phone_bidx = BlindIndexField(source="phone", kind="phone")
    birth_date = EncryptedDateField(null=True)
    notes = EncryptedTextField()

    class Meta:
        app_label = "privacy"
        db_table = "bench_encrypted_contact"
        managed = False

    def __str__(self) -> str:
        return f"bench row #{self.pk}"


def _values(i: int) -> dict[str, object]:
    return {
        "organisation_id": 1,
        "first_name": f"Ana{i}",
        "last_name": f"Novak{i}",
        "email": f"Ana.Novak{i}@Example.si",
        "phone": f"+38641{i % 1000000:06d}",
        "birth_date": dt.date(1950, 1, 1) + dt.timedelta(days=i % 20000),
        "notes": f"Prefers SMS reminders after 16:00; visit {i}",
    }


def _fill(model: type[models.Model], rows: int, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, rows, batch):
        objs = [model(**_values(i)) for i in range(start, min(start + batch, rows))]
        model._default_manager.bulk_create(objs)  # type: ignore[attr-defined]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args()
    tables = (BenchPlainContact, BenchEncryptedContact)
    with connection.schema_editor() as editor:
        for model in tables:
            editor.execute(f"DROP TABLE IF EXISTS {model._meta.db_table}")
            editor.create_model(model)
    try:
        plain = _fill(BenchPlainContact, args.rows, args.batch)
        encrypted = _fill(BenchEncryptedContact, args.rows, args.batch)
        found = BenchEncryptedContact.objects.filter(
            email_bidx=BenchEncryptedContact._meta.get_field("email_bidx").digest(
                "ana.novak7@example.si"
            )
        ).get()
        assert found.email == "Ana.Novak7@Example.si"
    finally:
        with connection.schema_editor() as editor:
            for model in tables:
                editor.delete_model(model)
    result = {
        "rows": args.rows,
        "batch": args.batch,
        "plain_seconds": round(plain, 3),
        "encrypted_seconds": round(encrypted, 3),
        "ratio": round(encrypted / plain, 2),
        "per_row_us_plain": round(plain / args.rows * 1e6, 1),
        "per_row_us_encrypted": round(encrypted / args.rows * 1e6, 1),
        "db": connection.vendor,
    }
    print(json.dumps(result))
    print(
        f"{args.rows} rows on {connection.vendor}: plain {result['per_row_us_plain']} us/row, "
        f"encrypted + 2 blind indexes {result['per_row_us_encrypted']} us/row "
        f"({result['ratio']}x)"
    )


if __name__ == "__main__":
    main()
