"""Campaigns at scale (issue 8): audience count, materialisation, end-to-end to all-sent.

    .venv/bin/python bench/campaign_materialise.py [--contacts 100000]

Uses its own database ``carely_bench_campaigns`` (created and migrated when missing) unless
DATABASE_URL says otherwise, Redis db 10, and the loopback Infobip of the messaging bench
(``bench/fake_infobip.py``) in its own process.

An organisation of --contacts contacts (names, e-mail, phone, gender, birth date, language sl/en,
active relationship) of whom about 88 % gave marketing consent on every channel, 4 % withdrew it
for SMS, 4 % never gave it, 2 % are restricted and 2 % are on the suppression list.

1. **Count**: ``audience_count`` for the whole organisation on SMS, for Slovenian speakers on
   WhatsApp-then-SMS-then-e-mail, and for women aged 30-60 (the gender and age filter decrypts
   two columns); median of 3 after one warm-up. Target: under 1 s.
2. **Materialisation**: an approved campaign to everyone on SMS, materialised by a child process
   (the Celery task's call without the broker), which reports its own time and peak RSS (and its
   forked reader's); rows/s =
   queued rows / seconds. For a figure comparable across machine load, the parent then times a
   plain ``Message.objects.bulk_create`` of as many rows of the same size (encryption included)
   and reports the ratio. Targets: >= 10,000 rows/s, worker RSS < 300 MB.
   The campaign is then cancelled (every queued row cancelled in batches; the time is reported).
3. **End to end**: a second campaign to the same audience, approved while two dispatch workers
   (the messaging bench's loop) and the fake provider run; the materialiser starts as the
   approval's task would. Reported: seconds from approval to the last row sent.

Prints JSON and a one-line summary. Not part of the test run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._support import ensure_database, free_port  # noqa: E402

DB_NAME = "carely_bench_campaigns"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")
os.environ.setdefault("CARELY_PUBLIC_BASE_URL", "https://pep.example.test")
os.environ.setdefault("MESSAGING_PROVIDER", "infobip")
os.environ.setdefault("INFOBIP_API_KEY", "bench-key")
os.environ.setdefault("MESSAGING_CLAIM_BATCH", "1000")
os.environ.setdefault("MESSAGING_PROVIDER_BATCH", "500")
os.environ.setdefault("MESSAGING_RATE_LIMIT_PER_SECOND", "200")
BULK = "messaging-bulk"
FIRST = ["Ana", "Bor", "Cvetka", "Damjan", "Eva", "Filip", "Gaja", "Hana", "Igor", "Jana"]
LAST = ["Novak", "Horvat", "Krajnc", "Zupančič", "Kovač", "Potočnik", "Mlakar", "Vidmar"]


# --- child processes --------------------------------------------------------------------------
def child_materialise(campaign_id: int) -> None:
    """The Celery task's call, timed, with its own peak memory."""
    import django

    django.setup()
    from django.urls import get_resolver

    from campaigns.links import click_url_maker
    from campaigns.materialise import campaign_materialise
    from carely.celery import app as celery_app

    # A running Celery worker imported its task modules when it started, and a tracker's first
    # reverse() loads the URL configuration once per process: both before the clock (about
    # 0.5 s here, reported), so the figure is the campaign's own work.
    warming = time.perf_counter()
    celery_app.loader.import_default_modules()
    get_resolver().reverse_dict  # noqa: B018 (populates the URL patterns, as reverse() does)
    warm_up_s = time.perf_counter() - warming
    started = time.perf_counter()
    report = campaign_materialise(campaign_id, track_links=click_url_maker(campaign_id))
    seconds = time.perf_counter() - started
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The forked reader (large campaigns on PostgreSQL), once it has been waited for.
    reader_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "warm_up_s": warm_up_s,
                "queued": report.queued,
                "contacts": report.contacts,
                "excluded": report.excluded,
                "batches": report.batches,
                "finished": report.finished,
                "maxrss_mb": round(maxrss_mb, 1),
                "reader_maxrss_mb": round(reader_mb, 1),
            }
        ),
        flush=True,
    )


def child_worker(stop_file: str) -> None:
    import django

    django.setup()
    from messaging.dispatch import dispatch_batch, worker_id

    owner = worker_id()
    while not os.path.exists(stop_file):
        report = dispatch_batch(queue=BULK, owner=owner)
        if report.claimed == 0:
            time.sleep(0.02)


def _child(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, *args], env=os.environ, stdout=subprocess.PIPE
    )


# --- set-up -----------------------------------------------------------------------------------
def _seed(organisation, count: int) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from consent.models import ConsentEntry, Purpose
    from consent.services import suppression_add
    from contacts.models import Contact
    from contacts.services import contacts_bulk_upsert

    marketing = Purpose.objects.for_organisation(organisation).get(slug="marketing")
    now = timezone.now()
    for offset in range(0, count, 2000):
        rows = [
            {
                "first_name": FIRST[i % len(FIRST)],
                "last_name": LAST[i % len(LAST)],
                "email": f"patient{i}@example.test",
                "phone": f"+3864{1000000 + i}",
                "gender": "female" if i % 2 else "male",
                "birth_date": dt.date(1940 + i % 60, 1 + i % 12, 1 + i % 28).isoformat(),
                "relationship_status": "active",
                "preferred_language": "sl" if i % 4 else "en",
            }
            for i in range(offset, min(offset + 2000, count))
        ]
        results = contacts_bulk_upsert(organisation=organisation, rows=rows, source_kind="import")
        ids = [r.id for r in results if r.id is not None]
        entries = []
        for n, pk in enumerate(ids):
            share = (offset + n) % 100
            if share < 4:
                continue  # never asked
            entries.append(
                ConsentEntry(
                    organisation=organisation,
                    contact_id=pk,
                    purpose=marketing,
                    channel="all",
                    status="given",
                    source="form",
                    recorded_at=now - dt.timedelta(days=30),
                )
            )
            if share < 8:
                entries.append(
                    ConsentEntry(
                        organisation=organisation,
                        contact_id=pk,
                        purpose=marketing,
                        channel="sms",
                        status="withdrawn",
                        source="unsubscribe_link",
                        recorded_at=now - dt.timedelta(days=1),
                    )
                )
        ConsentEntry.objects.bulk_create(entries, batch_size=2000)
        restricted = [pk for n, pk in enumerate(ids) if (offset + n) % 100 in (8, 9)]
        Contact.objects.filter(pk__in=restricted).update(restricted_at=now)
    for i in range(10, count, 50):  # 2 %
        suppression_add(organisation=organisation, phone=f"+3864{1000000 + i}")


def _users(organisation):  # type: ignore[no-untyped-def]
    from carely.orgs.models import Membership, User
    from carely.orgs.roles import Role

    tag = uuid.uuid4().hex[:8]
    author = User.objects.create_user(email=f"author-{tag}@example.test", password=None)
    approver = User.objects.create_user(email=f"approver-{tag}@example.test", password=None)
    Membership.objects.create(user=author, organisation=organisation, role=Role.STAFF)
    Membership.objects.create(user=approver, organisation=organisation, role=Role.ORG_ADMIN)
    return author, approver


def _campaign(organisation, author, audience, template, name: str):  # type: ignore[no-untyped-def]
    from campaigns.services import campaign_create, campaign_submit

    campaign = campaign_create(
        organisation=organisation,
        actor=author,
        name=name,
        purpose="marketing",
        channels=["sms"],
        audience=audience,
        templates={("sms", "sl"): template},
    )
    campaign_submit(campaign=campaign, actor=author)
    return campaign


def _median_count(organisation, filters, channels) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    from campaigns.audiences import audience_count, filters_clean

    clean = filters_clean(filters, organisation=organisation)
    audience_count(organisation=organisation, filters=clean, purpose="marketing", channels=channels)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        result = audience_count(
            organisation=organisation, filters=clean, purpose="marketing", channels=channels
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times), result.as_dict()


def _baseline(organisation, template, rows: int) -> float:  # type: ignore[no-untyped-def]
    """Plain bulk_create of SMS rows as large as the campaign's, built before the clock."""
    from django.db import transaction
    from django.utils import timezone

    from contacts.models import Contact
    from messaging.models import Message

    now = timezone.now()
    key = f"baseline:{uuid.uuid4().hex[:8]}"
    ids = list(Contact.objects.for_organisation(organisation).values_list("pk", flat=True)[:rows])
    body = "Ana, ta mesec 20 % popusta na preventivne preglede. Odjava: " + "x" * 110
    built = [
        Message(
            organisation=organisation,
            contact_id=pk,
            channel="sms",
            kind="marketing",
            purpose="marketing",
            template=template,
            template_version=template.version,
            body=body,
            to_address="+38641000000",
            legal_basis="consent",
            consent_entry_id=1,
            dedupe_key=key,
            due_at=now,
            created_at=now,
            status="cancelled",
        )
        for pk in ids
    ]
    started = time.perf_counter()
    for offset in range(0, len(built), 2000):
        with transaction.atomic():
            Message.objects.bulk_create(built[offset : offset + 2000], batch_size=1000)
    seconds = time.perf_counter() - started
    Message.objects.filter(dedupe_key=key).delete()
    return len(built) / seconds


def run(args: argparse.Namespace, port: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign
    from campaigns.services import (
        audience_save,
        campaign_approve,
        campaign_cancel,
        campaign_messages_settle,
    )
    from carely.orgs.models import Organisation
    from messaging.models import Message
    from messaging.services import provider_account_for, template_save

    tag = uuid.uuid4().hex[:8]
    organisation = Organisation.objects.create(name=f"Bench {tag}", slug=f"bench-camp-{tag}")
    account = provider_account_for(organisation)
    account.quiet_hours_enabled = False  # the run may happen at night
    account.save()
    seeding = time.perf_counter()
    _seed(organisation, args.contacts)
    seeded_s = time.perf_counter() - seeding
    with connection.cursor() as cursor:
        # VACUUM too: this server runs without autovacuum, and a freshly seeded table read for
        # the first time pays for setting hint bits, which a real clinic's table has long had.
        cursor.execute("VACUUM ANALYZE")
        # And the seeding's dirty pages written out now, not by the timed phases' backends (the
        # server's shared_buffers is the default 128 MB): the same start on every run.
        cursor.execute("CHECKPOINT")
    author, approver = _users(organisation)
    template = template_save(
        organisation=organisation,
        name="offer",
        kind="marketing",
        channel="sms",
        language="sl",
        body="{{ first_name }}, ta mesec 20 % popusta na preventivne preglede. "
        "Rezervacija: https://klinika.example/termin",
    )
    everyone = audience_save(organisation=organisation, name="Everyone", filters={})

    # 1. the count
    count_all_s, count_all = _median_count(organisation, {}, ["sms"])
    count_sl_s, _ = _median_count(organisation, {"languages": ["sl"]}, ["whatsapp", "sms", "email"])
    count_decrypt_s, count_decrypt = _median_count(
        organisation, {"genders": ["female"], "age_min": 30, "age_max": 60}, ["sms"]
    )

    # 2. materialisation alone
    first = _campaign(organisation, author, everyone, template, "Bench materialise")
    campaign_approve(campaign=first, actor=approver)
    child = _child("--materialise", str(first.pk))
    out, _ = child.communicate()
    materialised = json.loads(out.decode().strip().splitlines()[-1])
    baseline_rows_per_s = _baseline(organisation, template, materialised["queued"])
    cancelling = time.perf_counter()
    cancelled = campaign_cancel(campaign=Campaign.objects.get(pk=first.pk), actor=approver)
    cancel_request_s = time.perf_counter() - cancelling
    # The rest, as the campaign_messages_settle task moves it (no broker worker runs here).
    campaign_messages_settle(campaign=cancelled)
    cancel_s = time.perf_counter() - cancelling
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE messaging_message")

    # 3. end to end, with the workers running
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_infobip.py"), "--port", str(port)]
    )
    stop_file = f"/tmp/carely-bench-stop-{uuid.uuid4().hex}"
    workers = [_child("--worker", stop_file) for _ in range(2)]
    try:
        time.sleep(1.0)
        second = _campaign(organisation, author, everyone, template, "Bench end to end")
        approved_at = time.perf_counter()
        approved_wall = timezone.now()
        campaign_approve(campaign=second, actor=approver)
        materialiser = _child("--materialise", str(second.pk))
        while True:
            time.sleep(0.5)
            if materialiser.poll() is None:
                continue
            left = Message.objects.filter(
                campaign_id=second.pk, status__in=["queued", "deferred", "sending"]
            ).count()
            if left == 0:
                break
        end_to_end_s = time.perf_counter() - approved_at
        out2, _ = materialiser.communicate()
        second_materialised = json.loads(out2.decode().strip().splitlines()[-1])
        sent = Message.objects.filter(campaign_id=second.pk, status="sent").count()
        last_sent = (
            Message.objects.filter(campaign_id=second.pk)
            .order_by("-sent_at")
            .values_list("sent_at", flat=True)
            .first()
        )
    finally:
        Path(stop_file).touch()
        for worker in workers:
            worker.wait(timeout=30)
        server.terminate()
        server.wait(timeout=10)
    rows_per_s = materialised["queued"] / materialised["seconds"]
    figures = {
        "contacts": args.contacts,
        "seed_s": round(seeded_s, 1),
        "count_all_sms_s": round(count_all_s, 3),
        "count_all_sms": count_all,
        "count_sl_three_channels_s": round(count_sl_s, 3),
        "count_gender_age_decrypt_s": round(count_decrypt_s, 3),
        "count_gender_age_matched": count_decrypt["matched"],
        "materialise_s": round(materialised["seconds"], 2),
        "materialise_worker_warm_up_s": round(materialised["warm_up_s"], 2),
        "materialise_queued": materialised["queued"],
        "materialise_excluded": materialised["excluded"],
        "materialise_rows_per_s": round(rows_per_s),
        "materialise_worker_maxrss_mb": materialised["maxrss_mb"],
        "materialise_reader_maxrss_mb": materialised["reader_maxrss_mb"],
        "baseline_bulk_create_rows_per_s": round(baseline_rows_per_s),
        "materialise_to_bulk_create": round(baseline_rows_per_s / rows_per_s, 2),
        "cancel_in_request_s": round(cancel_request_s, 2),
        "cancel_queued_s": round(cancel_s, 2),
        "end_to_end_s": round(end_to_end_s, 1),
        "end_to_end_materialise_s": round(second_materialised["seconds"], 1),
        "end_to_end_sent": sent,
        "end_to_end_last_sent_after_approval_s": round(
            (last_sent - approved_wall).total_seconds(), 1
        )
        if last_sent
        else None,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(figures, indent=1))
    print(
        f"count {count_all_s:.3f}s (decrypting {count_decrypt_s:.3f}s); materialise "
        f"{rows_per_s:,.0f} rows/s, {materialised['maxrss_mb']} MB; all sent "
        f"{end_to_end_s:.1f}s after approval"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--materialise", type=int)
    parser.add_argument("--worker", metavar="STOP_FILE")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.materialise:
        child_materialise(args.materialise)
        return
    if args.worker:
        child_worker(args.worker)
        return
    port = free_port()
    os.environ["INFOBIP_BASE_URL"] = f"http://127.0.0.1:{port}"
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(args, port)


if __name__ == "__main__":
    main()
