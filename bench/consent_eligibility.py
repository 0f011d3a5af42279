"""Eligibility decisions per second over a realistic consent ledger (CON-3..CON-7, MSG-5).

    createdb -h 127.0.0.1 -U postgres carely_bench_consent
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/carely_bench_consent
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/consent_eligibility.py [--contacts 100000] [--batch 1000]

PostgreSQL only. Builds a scratch organisation of --contacts contacts (through the bulk-upsert
service), a ledger of several entries each (an "all" consent, later per-channel changes, some
withdrawals, some guardian entries for minors, other purposes), objections and suppression
entries; then asks ``eligibility_decide`` about every contact in batches of --batch, for
marketing by e-mail, marketing by SMS and transactional SMS, and prints decisions/s, the queries
per batch (which must not vary) and how the answers split. Its rows are deleted at the end (the
organisation stays: its audit events are append-only), unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from carely.orgs.models import Organisation  # noqa: E402
from consent.eligibility import eligibility_decide  # noqa: E402
from consent.models import ConsentEntry, Objection, Purpose, SuppressionEntry  # noqa: E402
from contacts.models import Contact  # noqa: E402
from contacts.services import contacts_bulk_upsert  # noqa: E402

UPSERT_BATCH = 1000


def person(i: int, today: dt.date) -> dict[str, Any]:
    """Contact ``i``: all have e-mail, 4 in 5 a phone, half an active relationship, 1 in 15 is
    15 years old."""
    minor = i % 15 == 0
    born = today.replace(year=today.year - (15 if minor else 30 + i % 40), day=1)
    row: dict[str, Any] = {
        "first_name": f"Ime{i}",
        "last_name": f"Priimek{i}",
        "email": f"oseba{i}@example.test",
        "external_id": f"B-{i}",
        "birth_date": born.isoformat(),
        "relationship_status": "active" if i % 2 else "none",
    }
    if i % 5:
        row["phone"] = f"+3864{1000000 + i}"
    return row


def populate(organisation: Organisation, size: int) -> list[int]:
    today = timezone.localdate()
    ids: list[int] = []
    for start in range(0, size, UPSERT_BATCH):
        rows = [person(i, today) for i in range(start, min(start + UPSERT_BATCH, size))]
        results = contacts_bulk_upsert(organisation=organisation, rows=rows, source_kind="import")
        ids.extend(r.id for r in results if r.id is not None)
    return ids


def ledger(organisation: Organisation, ids: list[int]) -> int:
    """About four entries a contact, spread over the last three years (some lapse)."""
    purposes = dict(Purpose.objects.for_organisation(organisation).values_list("slug", "pk"))
    now = timezone.now()
    entries: list[ConsentEntry] = []
    written = 0

    def add(pk: int, slug: str, channel: str, status: str, source: str, days: int) -> None:
        entries.append(
            ConsentEntry(
                organisation=organisation,
                contact_id=pk,
                purpose_id=purposes[slug],
                channel=channel,
                status=status,
                source=source,
                recorded_at=now - dt.timedelta(days=days, seconds=pk % 86400),
            )
        )

    for n, pk in enumerate(ids):
        add(pk, "marketing", "all", "given", "form", 200 + n % 900)
        if n % 20 != 2:  # else the old "all" stays current: it lapses without a relationship
            add(pk, "marketing", "sms", "withdrawn" if n % 4 == 0 else "given", "staff", 100)
            add(pk, "marketing", "email", "withdrawn" if n % 10 == 1 else "given", "api", 50)
        if n % 30 == 0:
            add(pk, "marketing", "all", "given", "guardian", 20)  # half the minors' guardians
        add(pk, "surveys" if n % 2 else "reminders", "all", "given", "form", 300)
        if len(entries) >= 10_000:
            ConsentEntry.objects.bulk_create(entries, batch_size=5000)
            written += len(entries)
            entries.clear()
    ConsentEntry.objects.bulk_create(entries, batch_size=5000)
    return written + len(entries)


def objections_and_suppression(organisation: Organisation, ids: list[int]) -> dict[str, int]:
    objections = [
        Objection(
            organisation=organisation,
            contact_id=pk,
            kind="direct_marketing" if n % 2 else "legitimate_interest",
            source="form",
        )
        for n, pk in enumerate(ids[::100])
    ]
    Objection.objects.bulk_create(objections)
    digests = Contact.objects.filter(pk__in=ids[7::50]).values_list("email_bidx", flat=True)
    suppression = [
        SuppressionEntry(
            organisation=organisation, kind="email", digest=d, reason="request", source="staff"
        )
        for d in digests
    ]
    SuppressionEntry.objects.bulk_create(suppression)
    return {"objections": len(objections), "suppression_entries": len(suppression)}


def decide_all(
    organisation: Organisation, ids: list[int], batch: int, **question: Any
) -> dict[str, Any]:
    queries: set[int] = set()
    reasons: Counter[str] = Counter()
    allowed = 0
    started = time.perf_counter()
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with CaptureQueriesContext(connection) as captured:
            decisions = eligibility_decide(organisation=organisation, contact_ids=chunk, **question)
        queries.add(len(captured.captured_queries))
        for decision in decisions.values():
            allowed += decision.allowed
            reasons.update(decision.reasons)
    seconds = time.perf_counter() - started
    return {
        "decisions_per_s": round(len(ids) / seconds),
        "seconds": round(seconds, 2),
        "queries_per_batch": sorted(queries),
        "allowed": allowed,
        "reasons": dict(sorted(reasons.items())),
    }


def clean_up(organisation: Organisation) -> None:
    with connection.cursor() as cursor:
        for table in (
            "consent_consententry",
            "consent_objection",
            "consent_suppressionentry",
            "contacts_contactchange",
            "contacts_contact",
        ):
            # Whole-organisation removal is the tenant purge's business; the ledger's trigger
            # guards UPDATE only, and these are the benchmark's own rows.
            cursor.execute(f"DELETE FROM {table} WHERE organisation_id = %s", [organisation.pk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="Leave the scratch rows in place.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Run it on PostgreSQL: set DATABASE_URL (see bench/README.md).")
    organisation = Organisation.objects.create(
        name="Bench consent", slug=f"bench-consent-{uuid.uuid4().hex[:8]}"
    )
    result: dict[str, Any] = {"contacts": args.contacts, "batch": args.batch}
    try:
        started = time.perf_counter()
        ids = populate(organisation, args.contacts)
        result["entries"] = ledger(organisation, ids)
        result.update(objections_and_suppression(organisation, ids))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE contacts_contact")
            cursor.execute("ANALYZE consent_consententry")
        result["setup_seconds"] = round(time.perf_counter() - started, 1)
        result["marketing_email"] = decide_all(
            organisation, ids, args.batch, kind="marketing", purpose="marketing", channel="email"
        )
        result["marketing_sms"] = decide_all(
            organisation, ids, args.batch, kind="marketing", purpose="marketing", channel="sms"
        )
        result["transactional_sms"] = decide_all(
            organisation, ids, args.batch, kind="transactional", channel="sms"
        )
    finally:
        if not args.keep:
            clean_up(organisation)
    print(json.dumps(result, indent=2))
    slowest = min(result[k]["decisions_per_s"] for k in ("marketing_email", "marketing_sms"))
    print(
        f"eligibility: {args.contacts:,} contacts, {result['entries']:,} entries; marketing "
        f"{slowest:,}/s (slowest), transactional "
        f"{result['transactional_sms']['decisions_per_s']:,}/s; queries per batch "
        f"{result['marketing_email']['queries_per_batch']} marketing, "
        f"{result['transactional_sms']['queries_per_batch']} transactional"
    )


if __name__ == "__main__":
    main()
