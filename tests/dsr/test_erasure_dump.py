"""DSR-9 end to end: after an erasure, the subject is nowhere.

Three independent searches, so no store can hide the subject: the raw bytes of ``pg_dump
--data-only`` of the whole database (plain and in the normal forms the values are stored in),
every file in storage, and every row of every installed model read through the ORM (which
decrypts the encrypted columns, so an encrypted copy cannot hide in ciphertext). Then the
suppression entry still blocks a re-import (CON-6) and the queued messages were cancelled.

PostgreSQL only: ``pg_dump`` needs the committed data of a real server, so the test runs with a
transactional database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import FileField

from consent.eligibility import Reason, eligibility_decide
from contacts.services import contacts_bulk_upsert
from dsr.erasure import erasure_execute
from messaging.models import Message, MessageEvent, Status
from tests.consent.conftest import record
from tests.dsr.test_erasure import (  # noqa: F401  (media is an autouse fixture)
    ACTOR,
    EMAIL,
    EXTERNAL_ID,
    FIRST,
    LAST,
    OLD_PHONE,
    PHONE,
    media,
    subject_with_history,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.obligation("DSR-9"),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="pg_dump needs PostgreSQL (set DATABASE_URL); SQLite has no dump to search",
    ),
]


def _national(e164: str) -> list[str]:
    digits = e164.lstrip("+")
    local = digits[3:]  # Slovenia: +386
    return [e164, digits, "0" + local, local, f"0{local[:2]} {local[2:5]} {local[5:]}"]


def needles() -> dict[str, list[str]]:
    """Every form a value of the subject could be stored in, lower-cased (searches are
    case-insensitive)."""
    return {
        "name": [FIRST.lower(), LAST.lower(), "brezovnik"],
        "email": [EMAIL.lower(), EMAIL.lower().split("@")[0]],
        "phone": _national(PHONE) + _national(OLD_PHONE),
        "external_id": [EXTERNAL_ID.lower()],
    }


def _hits(text: str) -> dict[str, list[str]]:
    low = text.lower()
    found = {kind: [n for n in forms if n in low] for kind, forms in needles().items()}
    return {kind: forms for kind, forms in found.items() if forms}


def _pg_dump() -> bytes:
    db = connection.settings_dict
    command = [
        shutil.which("pg_dump") or "pg_dump",
        "--data-only",
        "--no-owner",
        "-h",
        db["HOST"] or "127.0.0.1",
        "-p",
        str(db["PORT"] or 5432),
        "-U",
        db["USER"] or "postgres",
        db["NAME"],
    ]
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    return subprocess.run(command, check=True, capture_output=True, env=env, timeout=120).stdout


def _tables_holding(dump: bytes, values: list[str]) -> set[str]:
    """The tables whose COPY block in a data-only dump contains any of ``values``."""
    tables: set[str] = set()
    table = ""
    for line in dump.decode("utf-8", "replace").splitlines():
        if line.startswith("COPY "):
            table = line.split()[1].split(".")[-1].strip('"')
        elif line == "\\.":
            table = ""
        elif table and any(v in line for v in values):
            tables.add(table)
    return tables


def _orm_values() -> list[tuple[str, str]]:
    """(model.field, value as text) of every row of every installed model, decrypted."""
    values: list[tuple[str, str]] = []
    for model in apps.get_models():
        fields = model._meta.concrete_fields
        for row in model._base_manager.all().iterator():
            for field in fields:
                value: Any = getattr(row, field.attname)
                if isinstance(field, FileField):
                    value = value.name if value else ""
                if isinstance(value, dict | list):
                    value = json.dumps(value, ensure_ascii=False)
                if value not in (None, ""):
                    values.append((f"{model._meta.label}.{field.name}", str(value)))
    return values


def _storage_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_after_erasure_no_store_holds_the_subject(org_a, media):  # noqa: F811
    history = subject_with_history(org_a, objected=True)
    digests = [
        history.contact.email_bidx,
        history.contact.phone_bidx,
        history.contact.external_id_bidx,
    ]
    # The dump covers the subject's rows: their digests are in the contacts table (the values
    # themselves are ciphertext there, so a plaintext hit below would be a real leak).
    assert "contacts_contact" in _tables_holding(_pg_dump(), digests)
    before = [(where, _hits(value)) for where, value in _orm_values()]
    assert {w.split(".")[0] + "." + w.split(".")[1] for w, h in before if h} >= {
        "contacts.Contact",
        "contacts.ContactChange",
        "messaging.Message",
        "dsr.DataSubjectRequest",
        "dsr.DsrStep",
    }
    files_before = _storage_files(media)
    assert len(files_before) == 2
    assert all(_hits(p.read_bytes().decode("utf-8", "replace")) for p in files_before)

    result = erasure_execute(history.request, actor=ACTOR)
    assert result["verification"]["passed"] is True

    raw = _pg_dump()
    assert _hits(raw.decode("utf-8", "replace")) == {}, "pg_dump still holds the subject"
    # The old digests remain only where DSR-9 allows: the suppression list (CON-6) and the
    # answered request's own blind indexes (kept restricted, GDPR Art. 5(2)).
    assert _tables_holding(raw, digests) == {"consent_suppressionentry", "dsr_datasubjectrequest"}
    left = [(where, hits) for where, value in _orm_values() if (hits := _hits(value))]
    assert left == [], f"rows still hold the subject: {left}"
    stored = [
        (str(p), h)
        for p in _storage_files(media)
        if (h := _hits(p.read_bytes().decode("utf-8", "replace")))
    ]
    assert stored == [] and _storage_files(media) == []

    # CON-6: the same e-mail and phone imported again are suppressed for marketing.
    (row,) = contacts_bulk_upsert(
        organisation=org_a,
        rows=[{"first_name": "Z", "email": EMAIL, "phone": PHONE}],
        source_kind="import",
    )
    record(row.contact, channel="all", purpose="marketing")
    for channel in ("email", "sms"):
        decision = eligibility_decide(
            organisation=org_a,
            contact_ids=[row.id],
            kind="marketing",
            channel=channel,
            purpose="marketing",
        )[row.id]
        assert not decision.allowed and Reason.SUPPRESSED in decision.reasons

    # The queued reminders were cancelled before the erasure, never handed to a provider.
    for message in history.queued:
        message = Message.objects.get(pk=message.pk)
        assert message.status == Status.CANCELLED and message.handed_at is None
        assert MessageEvent.objects.filter(message=message, kind=Status.CANCELLED).exists()
        assert not MessageEvent.objects.filter(message=message, kind=Status.SENT).exists()
