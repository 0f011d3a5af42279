"""Campaign materialisation: ``messages_enqueue_bulk`` rows/s on PostgreSQL (issue 8).

    .venv/bin/python bench/messaging_enqueue.py [--contacts 100000] [--batch 2000] [--profile]

Uses its own database ``carely_bench_enqueue`` (created and migrated when missing) unless
DATABASE_URL says otherwise, and Redis db 11 (the on-commit dispatch wake-up goes there; its
queue keys are deleted at the end).

Seeds --contacts contacts (first and last name, e-mail, phone, preferred language sl/en) with an
"all" marketing consent, and a marketing SMS and a marketing e-mail template (with subject and
HTML body) that use the first name. Then each channel is timed over every batch of --batch: one
``messages_enqueue_bulk`` call per batch, dedupe_key "campaign:<tag>:<channel>", campaign_id set.
Each batch's contacts are loaded (decrypted) just before its call, as the campaign worker loads
them, outside the timing (reported on its own), so one batch is in memory at a time.

For a figure that reads the same whatever else the machine is doing, the same process then times
a plain ``Message.objects.bulk_create`` of as many rows like the SMS ones (the same body, each
batch's instances built before its clock starts; the encryption of the columns is part of any
insert, so it is inside that timing too) and reports the ratios. Memory: ``ru_maxrss`` at the
end, and the tracemalloc peak of one batch call.

``--profile`` prints a cProfile of one SMS batch call after a warm-up call (cumulative and
own time) and stops.
Prints JSON and a one-line summary. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._support import ensure_database  # noqa: E402

DB_NAME = "carely_bench_enqueue"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")
os.environ.setdefault("CARELY_PUBLIC_BASE_URL", "https://pep.example.test")

FIRST = ["Ana", "Bor", "Cvetka", "Damjan", "Eva", "Filip", "Gaja", "Hana", "Igor", "Jana"]
LAST = ["Novak", "Horvat", "Krajnc", "Zupančič", "Kovač", "Potočnik", "Mlakar", "Vidmar"]


def _seed(organisation, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Contacts with an active relationship and an "all" marketing consent."""
    from django.utils import timezone

    from consent.models import ConsentEntry, Purpose
    from contacts.services import contacts_bulk_upsert

    marketing = Purpose.objects.for_organisation(organisation).get(slug="marketing")
    ids: list[int] = []
    for offset in range(0, count, 1000):
        rows = [
            {
                "first_name": FIRST[i % len(FIRST)],
                "last_name": LAST[i % len(LAST)],
                "email": f"patient{i}@example.test",
                "phone": f"+3864{1000000 + i}",
                "relationship_status": "active",
                "preferred_language": "sl" if i % 4 else "en",
            }
            for i in range(offset, min(offset + 1000, count))
        ]
        results = contacts_bulk_upsert(organisation=organisation, rows=rows, source_kind="import")
        batch = [r.id for r in results if r.id is not None]
        ConsentEntry.objects.bulk_create(
            [
                ConsentEntry(
                    organisation=organisation,
                    contact_id=pk,
                    purpose=marketing,
                    channel="all",
                    status="given",
                    source="form",
                    recorded_at=timezone.now(),
                )
                for pk in batch
            ]
        )
        ids.extend(batch)
    return ids


def _templates(organisation):  # type: ignore[no-untyped-def]
    from messaging.services import template_save

    sms = template_save(
        organisation=organisation,
        name="offer",
        kind="marketing",
        channel="sms",
        language="sl",
        body="{{ first_name }}, ta mesec 20 % popusta na preventivne preglede pri "
        "{{ organisation_name }}. Rezervacija: https://pep.example.test/termin",
    )
    email = template_save(
        organisation=organisation,
        name="offer",
        kind="marketing",
        channel="email",
        language="sl",
        subject="Novost za {{ first_name }}",
        body="Pozdravljeni {{ first_name }} {{ last_name }},\n\nta mesec 20 % popusta na "
        "preventivne preglede. Rezervacija: https://pep.example.test/termin\n\n"
        "{{ organisation_name }}",
        html_body="<p>Pozdravljeni {{ first_name }} {{ last_name }},</p><p>ta mesec 20 % popusta"
        ' na preventivne preglede. <a href="https://pep.example.test/termin">Rezervacija</a></p>'
        "<p>{{ organisation_name }}</p>",
    )
    return {"sms": sms, "email": email}


def _load(organisation, ids: list[int]):  # type: ignore[no-untyped-def]
    """One batch of contacts, as the campaign worker loads them (decrypted)."""
    from contacts.models import Contact

    return list(Contact.objects.for_organisation(organisation).filter(pk__in=ids).order_by("pk"))


def _enqueue_all(organisation, chunks, channel: str, template, key: str, campaign: int):  # type: ignore[no-untyped-def]
    """(seconds in messages_enqueue_bulk, seconds loading contacts); one batch in memory."""
    from messaging.services import messages_enqueue_bulk

    timed = loading = 0.0
    for ids in chunks:
        started = time.perf_counter()
        contacts = _load(organisation, ids)
        loaded = time.perf_counter()
        result = messages_enqueue_bulk(
            organisation=organisation,
            contacts=contacts,
            channel=channel,
            kind="marketing",
            purpose="marketing",
            template=template,
            dedupe_key=key,
            campaign_id=campaign,
        )
        timed += time.perf_counter() - loaded
        loading += loaded - started
        assert result.created == len(contacts), (result.refused, result.invalid)
    return timed, loading


def _baseline(organisation, chunks, template, body: str, key: str) -> float:  # type: ignore[no-untyped-def]
    """A plain bulk_create of rows like the SMS ones (the same body), each batch built before
    its clock starts."""
    from django.db import transaction
    from django.utils import timezone

    from messaging.models import Message

    now = timezone.now()
    seconds = 0.0
    for ids in chunks:
        rows = [
            Message(
                organisation=organisation,
                contact_id=c.pk,
                channel="sms",
                kind="marketing",
                purpose="marketing",
                template=template,
                template_version=template.version,
                body=body,
                to_address=c.phone,
                legal_basis="consent",
                consent_entry_id=1,
                dedupe_key=key,
                due_at=now,
                created_at=now,
            )
            for c in _load(organisation, ids)
        ]
        started = time.perf_counter()
        with transaction.atomic():
            Message.objects.bulk_create(rows, batch_size=1000)
        seconds += time.perf_counter() - started
    return seconds


def _checkpoint() -> None:
    """Start each timed pass with clean shared buffers. With PostgreSQL's default 128 MB, the
    pass before leaves them full of dirty outbox pages, and the next one then writes those out
    itself as it evicts them: a second pass measured 25-35 % slower than the same pass run
    first, whichever channel it was."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--channels", default="sms,email", help="sms and email, in this order")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the organisation's messages")
    args = parser.parse_args()
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(args)


def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from carely.orgs.models import Organisation
    from messaging.services import messages_enqueue_bulk, provider_account_for

    tag = uuid.uuid4().hex[:8]
    organisation = Organisation.objects.create(name=f"Bench {tag}", slug=f"bench-enq-{tag}")
    provider_account_for(organisation)
    seeding = time.perf_counter()
    ids = _seed(organisation, 2 * args.batch if args.profile else args.contacts)
    seeded_s = time.perf_counter() - seeding
    with connection.cursor() as cursor:
        # Statistics as a register that has existed for a while has them (autovacuum would get
        # there during the first timed channel and make the two channels incomparable), and no
        # dead rows left by an earlier run's clean-up in the outbox and its indexes.
        cursor.execute(
            "VACUUM (ANALYZE) contacts_contact, consent_consententry, messaging_message, "
            "messaging_messageevent"
        )
    templates = _templates(organisation)
    chunks = [ids[i : i + args.batch] for i in range(0, len(ids), args.batch)]
    campaign = int(time.time())
    try:
        if args.profile:
            import cProfile
            import pstats

            # A first call outside the profile: URL resolvers, imports and caches warm up.
            _enqueue_all(organisation, chunks[:1], "sms", templates["sms"], f"w:{tag}", campaign)
            contacts = _load(organisation, chunks[1])
            profile = cProfile.Profile()
            profile.enable()
            messages_enqueue_bulk(
                organisation=organisation,
                contacts=contacts,
                channel="sms",
                kind="marketing",
                purpose="marketing",
                template=templates["sms"],
                dedupe_key=f"campaign:{tag}:profile",
                campaign_id=campaign,
            )
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            return
        # Warm-up outside the timing (URL resolvers, imports, query plans), as a campaign worker
        # is warm after its first batch: 100 contacts of each channel under their own key.
        for channel in ("sms", "email"):
            _enqueue_all(
                organisation,
                [chunks[0][:100]],
                channel,
                templates[channel],
                f"warm:{tag}:{channel}",
                campaign,
            )
        load = os.getloadavg()[0]
        figures: dict[str, object] = {
            "contacts": len(ids),
            "batch": args.batch,
            "seed_contacts_s": round(seeded_s, 1),
            "load_at_start": round(load, 2),
        }
        channels = args.channels.split(",")
        for channel in channels:
            _checkpoint()
            seconds, loading = _enqueue_all(
                organisation,
                chunks,
                channel,
                templates[channel],
                f"campaign:{tag}:{channel}",
                campaign,
            )
            figures[f"{channel}_s"] = round(seconds, 2)
            figures[f"{channel}_rows_per_s"] = round(len(ids) / seconds)
            figures[f"{channel}_loading_contacts_s"] = round(loading, 2)
        from messaging.models import Message

        body = Message.objects.filter(dedupe_key=f"campaign:{tag}:sms").first().body  # type: ignore[union-attr]
        _checkpoint()
        seconds = _baseline(organisation, chunks, templates["sms"], body, f"baseline:{tag}")
        figures["bulk_create_s"] = round(seconds, 2)
        figures["bulk_create_rows_per_s"] = round(len(ids) / seconds)
        for channel in channels:
            figures[f"{channel}_to_bulk_create"] = round(
                figures[f"{channel}_s"] / seconds,  # type: ignore[operator]
                2,
            )
        tracemalloc.start()
        messages_enqueue_bulk(
            organisation=organisation,
            contacts=_load(organisation, chunks[0]),
            channel="sms",
            kind="marketing",
            purpose="marketing",
            template=templates["sms"],
            dedupe_key=f"campaign:{tag}:memory",
            campaign_id=campaign,
        )
        figures["tracemalloc_peak_one_batch_mb"] = round(
            tracemalloc.get_traced_memory()[1] / 2**20, 1
        )
        tracemalloc.stop()
        figures["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        figures["load_at_end"] = round(os.getloadavg()[0], 2)
        print(json.dumps(figures))
        print(
            f"enqueue: SMS {figures['sms_rows_per_s']:,} rows/s, e-mail "
            f"{figures['email_rows_per_s']:,} rows/s, plain bulk_create "
            f"{figures['bulk_create_rows_per_s']:,} rows/s (ratios {figures['sms_to_bulk_create']}"
            f" / {figures['email_to_bulk_create']}), maxrss {figures['maxrss_mb']} MB, load "
            f"{figures['load_at_start']}"
        )
    finally:
        if not args.keep:
            with connection.cursor() as cursor:
                # Timeline rows first (their foreign key), then the messages; the contacts and
                # the organisation stay (their audit events are append-only).
                cursor.execute(
                    "DELETE FROM messaging_messageevent WHERE organisation_id = %s",
                    [organisation.pk],
                )
                cursor.execute(
                    "DELETE FROM messaging_message WHERE organisation_id = %s", [organisation.pk]
                )
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).delete("messaging-bulk")


if __name__ == "__main__":
    main()
