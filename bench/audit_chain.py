"""Audit log throughput: concurrent writers across organisations, then verify every chain.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/carely .venv/bin/python bench/audit_chain.py

Writes --events audit events from --processes processes spread over --organisations tenants, each
event in its own transaction as a real request would, then walks the chains. For a baseline in the
same run it first writes the same number of events from one process. Prints one JSON object.
Needs a migrated database (``manage.py migrate``); creates organisations named bench-audit-N.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")


def _setup() -> None:
    import django

    django.setup()


def _writer(org_ids: list[int], count: int, offset: int, start_at: float) -> None:
    _setup()
    from carely.audit.context import Actor
    from carely.audit.services import audit_record

    actor = Actor.system("bench")
    while time.time() < start_at:
        time.sleep(0.001)
    for i in range(count):
        audit_record(
            action="bench.event",
            organisation=org_ids[(offset + i) % len(org_ids)],
            object_type="bench",
            object_id=offset + i,
            details={"n": i},
            actor=actor,
        )


def _run(org_ids: list[int], events: int, processes: int) -> float:
    ctx = mp.get_context("spawn")
    per_process = events // processes
    start_at = time.time() + 3.0  # lets every process finish importing Django first
    workers = [
        ctx.Process(target=_writer, args=(org_ids, per_process, n, start_at))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"a writer process failed with exit code {worker.exitcode}")
    return time.time() - start_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--organisations", type=int, default=4)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    _setup()
    from django.db import connection

    from carely.audit.chain import chain_verify
    from carely.audit.models import AuditEvent, chain_key_for
    from carely.orgs.models import Organisation

    orgs = [
        Organisation.objects.get_or_create(
            slug=f"bench-audit-{n}", defaults={"name": f"Bench {n}"}
        )[0]
        for n in range(1, args.organisations + 1)
    ]
    org_ids = [org.pk for org in orgs]
    keys = [chain_key_for(pk) for pk in org_ids]
    before = AuditEvent.objects.filter(chain_key__in=keys).count()
    connection.close()

    baseline = None if args.no_baseline else _run(org_ids, args.events, 1)
    concurrent = _run(org_ids, args.events, args.processes)

    started = time.time()
    reports = [chain_verify(key) for key in keys]
    verify_seconds = time.time() - started
    written = AuditEvent.objects.filter(chain_key__in=keys).count() - before
    expected = (args.events // args.processes) * args.processes + (
        0 if baseline is None else args.events
    )
    result = {
        "benchmark": "audit_chain",
        "db": connection.vendor,
        "events": args.events,
        "processes": args.processes,
        "organisations": args.organisations,
        "concurrent_seconds": round(concurrent, 3),
        "events_per_second": round(args.events / concurrent, 1),
        "baseline_one_process_seconds": None if baseline is None else round(baseline, 3),
        "baseline_events_per_second": None
        if baseline is None
        else round(args.events / baseline, 1),
        "speedup_vs_one_process": None if baseline is None else round(baseline / concurrent, 2),
        "events_written": written,
        "events_expected": expected,
        "chains_ok": all(r.ok for r in reports),
        "chain_problems": [r.as_dict() for r in reports if not r.ok],
        "verify_seconds": round(verify_seconds, 3),
    }
    print(json.dumps(result, indent=2))
    print(
        f"audit_chain: {result['events_per_second']} events/s from {args.processes} processes "
        f"over {args.organisations} organisations on {connection.vendor}; "
        f"chains {'valid' if result['chains_ok'] else 'BROKEN'}",
        file=sys.stderr,
    )
    if not result["chains_ok"] or written != expected:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
