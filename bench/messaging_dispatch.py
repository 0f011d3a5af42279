"""Outbox dispatch throughput and failure behaviour (MSG-9) on PostgreSQL and Redis.

    .venv/bin/python bench/messaging_dispatch.py [--messages 100000] [--fault-messages 20000]

Uses its own database ``carely_bench_messaging`` (created and migrated when missing) and Redis
db 9 unless DATABASE_URL / REDIS_URL say otherwise, and a loopback Infobip
(``bench/fake_infobip.py``) in its own process.

1. **Throughput**: an organisation of --messages contacts with marketing consent, one marketing
   SMS each enqueued through ``messages_enqueue_bulk``; then 2 worker processes run the same
   ``dispatch_batch`` the Celery task runs, until every row is sent. Mid-run a transactional
   reminder is enqueued through ``message_enqueue``; its queue-to-sent time is reported.
2. **Faults**: --fault-messages more; while they drain, the provider answers 429 (Retry-After 1)
   and 503 alternately for 4 s, and one worker is SIGKILLed mid-batch and replaced. Workers also
   run the reconciler each second (lease 5 s, grace 3 s for the run). At the end: duplicates
   (an id the provider accepted twice) and lost (a row neither sent nor ended with a reason)
   must both be 0.

Prints JSON and a one-line summary. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._support import ensure_database, free_port  # noqa: E402

DB_NAME = "carely_bench_messaging"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")
os.environ.setdefault("MESSAGING_PROVIDER", "infobip")
os.environ.setdefault("INFOBIP_API_KEY", "bench-key")
os.environ.setdefault("MESSAGING_CLAIM_BATCH", "1000")
os.environ.setdefault("MESSAGING_PROVIDER_BATCH", "500")
os.environ.setdefault("MESSAGING_RATE_LIMIT_PER_SECOND", "200")
os.environ.setdefault("MESSAGING_LEASE_SECONDS", "5")
os.environ.setdefault("MESSAGING_RECONCILE_GRACE_SECONDS", "3")
os.environ.setdefault("MESSAGING_BACKOFF_BASE_SECONDS", "1")
BULK = "messaging-bulk"


def worker(stop_file: str) -> None:
    """One dispatch process: the Celery task's loop without the broker around it."""
    import django

    django.setup()
    from messaging.dispatch import dispatch_batch, worker_id
    from messaging.reconcile import messages_reconcile

    owner = worker_id()
    last_reconcile = 0.0
    while not os.path.exists(stop_file):
        report = dispatch_batch(queue=BULK, owner=owner)
        if time.monotonic() - last_reconcile > 1.0:
            messages_reconcile()
            last_reconcile = time.monotonic()
        if report.claimed == 0:
            time.sleep(0.02)


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _post(url: str, body: object) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--fault-messages", type=int, default=20_000)
    parser.add_argument("--worker", metavar="STOP_FILE")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.worker:
        os.environ["INFOBIP_BASE_URL"] = f"http://127.0.0.1:{args.port}"
        worker(args.worker)
        return

    port = free_port()
    os.environ["INFOBIP_BASE_URL"] = f"http://127.0.0.1:{port}"
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(args, port)


def _seed(organisation, start: int, count: int):  # type: ignore[no-untyped-def]
    """Contacts with an active relationship and marketing consent on every channel."""
    from django.utils import timezone

    from consent.models import ConsentEntry, Purpose
    from contacts.models import Contact
    from contacts.services import contacts_bulk_upsert

    marketing = Purpose.objects.for_organisation(organisation).get(slug="marketing")
    ids: list[int] = []
    for offset in range(start, start + count, 1000):
        rows = [
            {
                "first_name": f"Ime{i}",
                "phone": f"+3864{1000000 + i}",
                "relationship_status": "active",
                "preferred_language": "sl",
            }
            for i in range(offset, min(offset + 1000, start + count))
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
    return list(Contact.objects.filter(pk__in=ids).order_by("pk"))


def _enqueue(organisation, contacts, key: str) -> float:  # type: ignore[no-untyped-def]
    from messaging.services import messages_enqueue_bulk

    started = time.perf_counter()
    for offset in range(0, len(contacts), 1000):
        result = messages_enqueue_bulk(
            organisation=organisation,
            contacts=contacts[offset : offset + 1000],
            channel="sms",
            kind="marketing",
            purpose="marketing",
            text="Ta mesec 20 % popusta na preventivne preglede.",
            dedupe_key=key,
        )
        assert not result.refused and not result.invalid, (result.refused, result.invalid)
    return time.perf_counter() - started


def _start_workers(stop_file: str, port: int, n: int = 2) -> list[subprocess.Popen[bytes]]:
    return [_start_worker(stop_file, port) for _ in range(n)]


def _start_worker(stop_file: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", stop_file, "--port", str(port)], env=os.environ
    )


def _pending(key: str) -> int:
    from messaging.models import Message

    # Waiting or in flight; the partial due and lease indexes answer it without a table scan,
    # so polling does not take CPU from the workers.
    waiting = Message.objects.filter(status__in=["queued", "deferred"], kind="marketing")
    sending = Message.objects.filter(status="sending")
    return waiting.filter(dedupe_key=key).count() + sending.filter(dedupe_key=key).count()


def run(args: argparse.Namespace, port: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from carely.orgs.models import Organisation
    from messaging.models import Message
    from messaging.services import message_enqueue, provider_account_for

    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_infobip.py"), "--port", str(port)]
    )
    base = f"http://127.0.0.1:{port}"
    stop_file = f"/tmp/carely-bench-stop-{uuid.uuid4().hex}"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        time.sleep(0.5)
        tag = uuid.uuid4().hex[:8]
        organisation = Organisation.objects.create(name=f"Bench {tag}", slug=f"bench-msg-{tag}")
        account = provider_account_for(organisation)
        account.quiet_hours_enabled = False  # the run may happen at night
        account.save()
        total = args.messages + args.fault_messages
        seeding = time.perf_counter()
        contacts = _seed(organisation, 0, total)
        seeded_s = time.perf_counter() - seeding
        main_key, fault_key = f"campaign:{tag}:1", f"campaign:{tag}:2"
        enqueue_s = _enqueue(organisation, contacts[: args.messages], main_key)
        # A stray wake-up per enqueue went to Redis; these workers do not use the broker.

        # --- throughput ---------------------------------------------------------------------
        start_stats = _get(f"{base}/_bench/stats")
        run_started = timezone.now()
        started = time.perf_counter()
        workers = _start_workers(stop_file, port)
        reminder = None
        while True:
            left = _pending(main_key)
            if reminder is None and left <= args.messages * 2 // 3:
                reminder = message_enqueue(
                    organisation=organisation,
                    contact=contacts[0],
                    channel="sms",
                    kind="transactional",
                    purpose="appointment_reminders",
                    text="Opomnik: termin jutri ob 9h.",
                    dedupe_key=f"staff:{tag}",
                )
            if left == 0:
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        stats = _get(f"{base}/_bench/stats")
        assert isinstance(stats, dict) and isinstance(start_stats, dict)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXTRACT(EPOCH FROM sent_at - GREATEST(created_at, %s)) FROM "
                "messaging_message WHERE dedupe_key = %s AND sent_at IS NOT NULL",
                [run_started, main_key],
            )
            latencies = sorted(float(r[0]) for r in cursor.fetchall())
            # The workers' own time: first hand-over to last record (process start-up excluded).
            cursor.execute(
                "SELECT EXTRACT(EPOCH FROM MAX(sent_at) - MIN(handed_at)) FROM messaging_message "
                "WHERE dedupe_key = %s",
                [main_key],
            )
            dispatching = float(cursor.fetchone()[0])
        while reminder is not None:
            reminder.refresh_from_db()
            if reminder.sent_at:
                break
            time.sleep(0.05)
        assert reminder is not None and reminder.sent_at is not None
        throughput = {
            "messages": args.messages,
            "seconds": round(dispatching, 2),
            "messages_per_s": round(args.messages / dispatching),
            "wall_seconds_with_worker_start": round(elapsed, 2),
            "provider_requests": stats["send_requests"] - start_stats["send_requests"],
            "queue_to_sent_p50_s": round(statistics.median(latencies), 2),
            "queue_to_sent_p95_s": round(latencies[int(len(latencies) * 0.95)], 2),
            "transactional_mid_run_s": round(
                (reminder.sent_at - reminder.created_at).total_seconds(), 3
            ),
            "seed_contacts_s": round(seeded_s, 1),
            "enqueue_s": round(enqueue_s, 1),
            "enqueue_per_s": round(args.messages / enqueue_s),
        }

        # --- faults -------------------------------------------------------------------------
        _enqueue(organisation, contacts[args.messages :], fault_key)
        fault_started = time.perf_counter()
        _post(f"{base}/_bench/fault", {"seconds": 4})
        time.sleep(1.5)  # inside the fault window, with both workers claiming and retrying
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        in_flight = Message.objects.filter(dedupe_key=fault_key, status="sending")
        killed_at = {
            "pending": _pending(fault_key),
            "left_sending": in_flight.count(),
            "left_sending_handed_to_provider": in_flight.filter(handed_at__isnull=False).count(),
        }
        workers[0] = _start_worker(stop_file, port)
        deadline = time.monotonic() + 300
        while _pending(fault_key) and time.monotonic() < deadline:
            time.sleep(0.1)
        fault_s = time.perf_counter() - fault_started
        seen = set(_get(f"{base}/_bench/seen"))  # type: ignore[arg-type]
        fault_stats = _get(f"{base}/_bench/stats")
        assert isinstance(fault_stats, dict)
        rows = list(
            Message.objects.filter(dedupe_key=fault_key).values_list(
                "our_id", "status", "last_error"
            )
        )
        by_status: dict[str, int] = {}
        for _, status, _ in rows:
            by_status[status] = by_status.get(status, 0) + 1
        handed = {"sent", "delivered"}
        ended = {"failed", "refused", "rejected", "cancelled"}
        lost = sum(
            1
            for our_id, status, error in rows
            if not ((status in handed and our_id in seen) or (status in ended and error))
        )
        sent_not_seen = sum(1 for our_id, s, _ in rows if s in handed and our_id not in seen)
        faults = {
            "messages": args.fault_messages,
            "seconds": round(fault_s, 2),
            "fault_answers_429_503": fault_stats["fault_answers"] - stats["fault_answers"],
            "at_kill": killed_at,
            "log_lookups": fault_stats["log_requests"],
            "by_status": by_status,
            "duplicates": fault_stats["duplicates"],
            "lost": lost,
            "recorded_sent_but_provider_never_saw": sent_not_seen,
        }
        result = {"throughput": throughput, "faults": faults}
        print(json.dumps(result, indent=2))
        print(
            f"dispatch: {throughput['messages_per_s']:,} msg/s over {args.messages:,} with 2 "
            f"workers, {throughput['provider_requests']} provider requests, p95 queue-to-sent "
            f"{throughput['queue_to_sent_p95_s']} s, transactional mid-run "
            f"{throughput['transactional_mid_run_s']} s; faults: duplicates="
            f"{faults['duplicates']} lost={faults['lost']}"
        )
    finally:
        Path(stop_file).touch()
        for process in workers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        server.terminate()
        Path(stop_file).unlink(missing_ok=True)
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).delete(BULK, "messaging-transactional")


if __name__ == "__main__":
    main()
