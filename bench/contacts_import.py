"""Contact import speed (CNT-2), against raw COPY and a plain bulk_create of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/carely_bench_contacts \\
        .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/carely_bench_contacts \\
        .venv/bin/python bench/contacts_import.py [--rows 100000] [--existing 100000] \\
        [--search-size 1000000]

PostgreSQL only, in a migrated database of its own. In the same run:

- csv: a generated Windows-1250 CSV (';', Slovenian headers) is uploaded and mapped as the UI
  does it, then the import worker's own ``contact_import_run`` is timed (streaming, reading and
  validation one batch ahead in its forked child, writes in batches of 1,000, progress saves),
  into a scratch organisation that already holds ``--existing`` contacts; about 20% of the rows
  match existing ones (half by external id, half by e-mail) and change them, the rest are new.
- api: the same rows as ``POST /api/v1/contacts/bulk-upsert/`` in batches of 1,000, through
  Django's test client in this process (full middleware, API-key authentication, throttling,
  DRF parsing and the response), into a second scratch organisation with the same contacts.
- copy: the same rows with ``COPY`` into a bare temporary table (the floor).
- bulk_create: the same rows with ``bulk_create`` into an unencrypted scratch table, no
  validation (object construction included).
- memory: the CSV path again over a file of ``--memory-rows`` rows under tracemalloc (peak of
  Python allocations; a streaming import does not grow with the file), and ru_maxrss of the
  process after the timed CSV import.
- search: an organisation grown to ``--search-size`` contacts (written directly with COPY, blind
  indexes computed here), then 200 lookups each by e-mail and by phone through
  ``Contact.objects.for_organisation(org).filter_blind(...)``; p50/p95 in ms.

Scratch contacts, their history and the API key are deleted at the end; the scratch
organisations and their audit events stay (the audit log is append-only), hence the dedicated
database. Prints one JSON object and a one-line summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")

import django

django.setup()

from django.db import connection, models  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from carely.api.models import ApiKey  # noqa: E402
from carely.api.scopes import ALL_SCOPES  # noqa: E402
from carely.api.services import api_key_create  # noqa: E402
from carely.orgs.models import Organisation  # noqa: E402
from carely.privacy.crypto import encrypt, keyring  # noqa: E402
from carely.privacy.fields import blind_indexes  # noqa: E402
from contacts.imports import (  # noqa: E402
    contact_import_map,
    contact_import_run,
    contact_import_upload,
)
from contacts.models import Contact, ImportJob, ImportState  # noqa: E402

BATCH = 1000
FIRST = [
    "Ana",
    "Maja",
    "Špela",
    "Nina",
    "Tjaša",
    "Urška",
    "Mojca",
    "Petra",
    "Nataša",
    "Zdenka",
    "Luka",
    "Žiga",
    "Matej",
    "Jure",
    "Tomaž",
    "Gašper",
    "Rok",
    "Nejc",
    "Anže",
    "Črt",
]
LAST = [
    "Novak",
    "Horvat",
    "Kovačič",
    "Krajnc",
    "Zupančič",
    "Potočnik",
    "Kovač",
    "Mlakar",
    "Kos",
    "Vidmar",
    "Golob",
    "Turk",
    "Božič",
    "Kralj",
    "Zupan",
    "Bizjak",
    "Hribar",
    "Korošec",
    "Rozman",
    "Kotnik",
]
MOBILE = ("031", "040", "041", "051", "068", "070", "064")
COLUMNS = ("external_id", "first_name", "last_name", "email", "phone", "birth_date", "gender")
HEADER = {  # the CSV's (Slovenian) column names and the fields they map to
    "Šifra": "external_id",
    "Ime": "first_name",
    "Priimek": "last_name",
    "E-pošta": "email",
    "Telefon": "phone",
    "Datum rojstva": "birth_date",
    "Spol": "gender",
}
_ASCII = str.maketrans("čšžČŠŽ", "cszCSZ")


def person(i: int) -> dict[str, str]:
    """Contact number ``i``: Slovenian name, e-mail, mobile (national or +386 form), birth date
    (d.m.yyyy as Slovenian spreadsheets write it), external id."""
    first, last = FIRST[i % 20], LAST[(i // 20) % 20]
    digits = f"{i % 1_000_000:06d}"
    prefix = MOBILE[(i // 1_000_000 + i) % 7]
    if i % 2:
        phone = f"{prefix} {digits[:3]} {digits[3:]}"
    else:
        phone = f"+386 {prefix[1:]} {digits[:3]} {digits[3:]}"
    born = dt.date(1940, 1, 1) + dt.timedelta(days=(i * 7919) % 25_000)
    return {
        "external_id": f"P-{i:07d}",
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}.{i}@primer.si".lower().translate(_ASCII),
        "phone": phone,
        "birth_date": f"{born.day}.{born.month}.{born.year}",
        "gender": "female" if i % 2 else "male",
    }


def import_row(n: int, existing: int) -> dict[str, str]:
    """Row ``n`` of the import: every fifth matches an existing contact and changes it."""
    if n % 5 == 0 and n // 5 < existing:
        row = person(n // 5)
        row["last_name"] += "-Novak"  # married name: an update with history (DSR-8)
        if n % 10 == 0:
            row.pop("external_id")  # matched by e-mail
        else:
            row["email"] = ""  # matched by external id
        return row
    return person(existing + n)


def import_rows(rows: int, existing: int) -> Iterator[dict[str, str]]:
    for n in range(rows):
        yield import_row(n, existing)


def write_csv(path: Path, rows: int, existing: int) -> None:
    with path.open("w", encoding="cp1250", newline="") as handle:
        handle.write(";".join(HEADER) + "\r\n")
        for row in import_rows(rows, existing):
            handle.write(";".join(row.get(f, "") for f in HEADER.values()) + "\r\n")


# --- scratch organisations and direct fills --------------------------------------------------


def scratch_organisation(label: str) -> Organisation:
    slug = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    return Organisation.objects.create(name=f"Bench {label}", slug=slug)


def fill(organisation: Organisation, start: int, count: int) -> None:
    """``count`` contacts written directly with COPY, as the service stores them (encrypted, blind
    indexes), without validation: the existing register of an organisation."""
    indexes = blind_indexes(Contact)
    ring = keyring()
    meta = Contact._meta
    aad = {name: meta.get_field(name).aad() for name in COLUMNS}  # type: ignore[attr-defined]
    columns = [*COLUMNS, *(indexes[k].attname for k in ("external_id", "email", "phone"))]
    columns += ["organisation_id", "source_kind", "created_at", "updated_at"]
    columns += ["preferred_language", "source", "relationship_status", "is_minor", "address"]
    columns += ["restriction_reason", "restriction_lift_informed_how"]
    now = timezone.now()
    sql = f"COPY contacts_contact ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for i in range(start, start + count):
            p = person(i)
            day, month, year = (int(x) for x in p["birth_date"].split("."))
            p["birth_date"] = dt.date(year, month, day).isoformat()
            phone = p["phone"].replace(" ", "")
            p["phone"] = phone if phone.startswith("+") else "+386" + phone[1:]
            values = [encrypt(p[c], aad[c], ring=ring) for c in COLUMNS]
            values += [indexes[k].digest(p[k]) for k in ("external_id", "email", "phone")]
            values += [organisation.pk, "import", now, now, "", "", "none", False, "", "", ""]
            copy.write_row(values)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
        # The register's pages go to disk before the timing starts: otherwise the import pays
        # for writing out the setup's dirty buffers (shared_buffers is 128 MB here), which made
        # back-to-back runs differ by up to 40%.
        cursor.execute("CHECKPOINT")


def clean_up(organisations: list[Organisation]) -> None:
    ids = [o.pk for o in organisations]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM contacts_contactchange WHERE organisation_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM contacts_contact WHERE organisation_id = ANY(%s)", [ids])
    ApiKey.objects.filter(organisation_id__in=ids).delete()
    for job in ImportJob.objects.filter(organisation_id__in=ids):
        for stored in (job.upload, job.rejected_file):
            if stored.name:
                stored.delete(save=False)
        job.delete()


# --- the paths ---------------------------------------------------------------------------------


def csv_import(organisation: Organisation, path: Path) -> tuple[float, dict[str, int]]:
    """The import worker itself: the file is uploaded and mapped as the UI does it (outside the
    timing), then ``contact_import_run`` (the Celery task's one call) is timed: streaming,
    read-ahead validation, batched writes, progress saves and the rejected-rows file."""
    with path.open("rb") as stream:
        job = contact_import_upload(organisation=organisation, user=None, uploaded=stream)
    contact_import_map(job=job, mapping=HEADER)
    ImportJob.objects.filter(pk=job.pk).update(queued_at=timezone.now())
    began = time.perf_counter()
    contact_import_run(job_id=job.pk)
    seconds = time.perf_counter() - began
    job.refresh_from_db()
    if job.state != ImportState.COMPLETED:
        raise SystemExit(f"the import ended {job.state}: {job.error}")
    counts = {
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "rejected": job.rejected,
        "rows": job.total,
    }
    return seconds, counts


def api_import(
    organisation: Organisation, rows: int, existing: int
) -> tuple[float, dict[str, int]]:
    key, secret = api_key_create(organisation=organisation, name="Bench", scopes=list(ALL_SCOPES))
    ApiKey.objects.filter(pk=key.pk).update(rate_limit_per_minute=1_000_000)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    elapsed = 0.0
    for start in range(0, rows, BATCH):
        batch = [
            {k: v for k, v in import_row(n, existing).items() if v}
            for n in range(start, min(start + BATCH, rows))
        ]
        body = json.dumps({"contacts": batch})  # the client's work, not timed
        began = time.perf_counter()
        response = client.post(
            "/api/v1/contacts/bulk-upsert/", body, content_type="application/json"
        )
        elapsed += time.perf_counter() - began
        if response.status_code != 200:
            raise SystemExit(f"bulk-upsert answered {response.status_code}: {response.content!r}")
        answer = response.json()
        for status in counts:
            counts[status] += answer[status]
    return elapsed, counts


def copy_baseline(rows: list[tuple[str, ...]]) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy_contact (" + ", ".join(f"{c} text" for c in COLUMNS) + ")"
        )
        began = time.perf_counter()
        with cursor.copy(f"COPY bench_copy_contact ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - began
        cursor.execute("DROP TABLE bench_copy_contact")
    return elapsed


class BenchPlainImportRow(models.Model):
    organisation_id = models.BigIntegerField()
    external_id = models.TextField()
    first_name = models.TextField()
    last_name = models.TextField()
    email = models.TextField()
    phone = models.TextField()
    birth_date = models.TextField()
    gender = models.TextField()

    class Meta:
        app_label = "contacts"
        db_table = "bench_plain_import_row"
        managed = False

    def __str__(self) -> str:
        return f"bench row #{self.pk}"


def bulk_create_baseline(rows: list[tuple[str, ...]]) -> float:
    with connection.schema_editor() as editor:
        editor.execute("DROP TABLE IF EXISTS bench_plain_import_row")
        editor.create_model(BenchPlainImportRow)
    try:
        began = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            BenchPlainImportRow.objects.bulk_create(
                [
                    BenchPlainImportRow(organisation_id=1, **dict(zip(COLUMNS, row, strict=True)))
                    for row in rows[start : start + BATCH]
                ]
            )
        return time.perf_counter() - began
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(BenchPlainImportRow)


def search(organisation: Organisation, size: int, lookups: int = 200) -> dict[str, Any]:
    step = max(1, size // lookups)
    picks = [person(i) for i in range(0, size, step)][:lookups]
    scoped = Contact.objects.for_organisation(organisation)
    timings: dict[str, list[float]] = {"email": [], "phone": []}
    for p in picks:
        for key in timings:
            began = time.perf_counter()
            found = list(scoped.filter_blind(region="SI", **{key: p[key]}))
            timings[key].append((time.perf_counter() - began) * 1000)
            if len(found) != 1:
                raise SystemExit(f"search by {key} found {len(found)} contacts for {p[key]!r}")
    out: dict[str, Any] = {}
    for key, values in timings.items():
        values.sort()
        out[f"{key}_p50_ms"] = round(statistics.median(values), 2)
        out[f"{key}_p95_ms"] = round(values[int(len(values) * 0.95) - 1], 2)
    return out


def rate(rows: int, seconds: float) -> float:
    return round(rows / seconds) if seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--existing", type=int, default=20_000)
    parser.add_argument("--search-size", type=int, default=200_000)
    parser.add_argument("--memory-rows", type=int, default=20_000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Run it on PostgreSQL: set DATABASE_URL (see bench/README.md).")
    organisations: list[Organisation] = []
    result: dict[str, Any] = {"rows": args.rows, "existing": args.existing, "batch": BATCH}
    with connection.cursor() as cursor:
        # An earlier run deleted its rows. Rewrite the tables compactly, so this run starts as
        # a register that grew by inserts does: a plain VACUUM leaves the freed space scattered
        # through the heap, and new rows then land on random pages (measured ~30% slower).
        cursor.execute("VACUUM FULL ANALYZE contacts_contact")
        cursor.execute("VACUUM FULL ANALYZE contacts_contactchange")
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "contacts.csv"
            write_csv(path, args.rows, args.existing)
            result["csv_bytes"] = path.stat().st_size

            org_csv = scratch_organisation("csv")
            organisations.append(org_csv)
            fill(org_csv, 0, args.existing)
            csv_seconds, counts = csv_import(org_csv, path)
            result["csv_maxrss_mb"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            )
            # The forked reading process (ADR 0008): the largest of the waited-for children.
            result["csv_child_maxrss_mb"] = round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            )
            result["csv_counts"] = counts

            org_memory = scratch_organisation("memory")
            organisations.append(org_memory)
            small = Path(folder) / "memory.csv"
            write_csv(small, min(args.memory_rows, args.rows), args.existing)
            tracemalloc.start()
            csv_import(org_memory, small)
            result["csv_tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
            result["csv_tracemalloc_rows"] = min(args.memory_rows, args.rows)
            tracemalloc.stop()

            org_api = scratch_organisation("api")
            organisations.append(org_api)
            fill(org_api, 0, args.existing)
            api_seconds, api_counts = api_import(org_api, args.rows, args.existing)
            result["api_counts"] = api_counts

            plain = [
                tuple(row.get(c, "") for c in COLUMNS)
                for row in import_rows(args.rows, args.existing)
            ]
            copy_seconds = copy_baseline(plain)
            bulk_seconds = bulk_create_baseline(plain)
            del plain

        result.update(
            {
                "csv_rows_per_s": rate(args.rows, csv_seconds),
                "api_rows_per_s": rate(args.rows, api_seconds),
                "copy_rows_per_s": rate(args.rows, copy_seconds),
                "bulk_create_rows_per_s": rate(args.rows, bulk_seconds),
                "csv_to_copy": round(csv_seconds / copy_seconds, 1),
                "api_to_copy": round(api_seconds / copy_seconds, 1),
                "bulk_create_to_copy": round(bulk_seconds / copy_seconds, 1),
                "csv_to_bulk_create": round(csv_seconds / bulk_seconds, 2),
                "api_client": "django.test.Client in process",
            }
        )
        clean_up(organisations)

        if args.search_size:
            org_search = scratch_organisation("search")
            organisations.append(org_search)
            began = time.perf_counter()
            for start in range(0, args.search_size, 100_000):
                fill(org_search, start, min(100_000, args.search_size - start))
            result["search_fill_seconds"] = round(time.perf_counter() - began, 1)
            result["search_size"] = args.search_size
            result.update(search(org_search, args.search_size))
    finally:
        clean_up(organisations)
    result["db"] = connection.vendor
    print(json.dumps(result))
    summary = (
        f"{args.rows:,} rows into {args.existing:,}: CSV {result['csv_rows_per_s']:,}/s, "
        f"API {result['api_rows_per_s']:,}/s, COPY {result['copy_rows_per_s']:,}/s, "
        f"bulk_create {result['bulk_create_rows_per_s']:,}/s (CSV {result['csv_to_copy']}x COPY); "
        f"CSV peak {result['csv_tracemalloc_peak_mb']} MB traced, "
        f"{result['csv_maxrss_mb']} MB RSS (reading child {result['csv_child_maxrss_mb']} MB)"
    )
    if args.search_size:
        summary += (
            f"; search in {args.search_size:,}: e-mail p50 {result['email_p50_ms']} ms "
            f"p95 {result['email_p95_ms']} ms, phone p50 {result['phone_p50_ms']} ms "
            f"p95 {result['phone_p95_ms']} ms"
        )
    print(summary)


if __name__ == "__main__":
    main()
