"""One data subject's access and erasure in a large organisation (issue 9: DSR-6, DSR-9, DSR-12).

    .venv/bin/python bench/dsr_subject.py [--contacts 1000000] [--small 10000] [--runs 3]

Uses its own database ``carely_bench_dsr`` (created and migrated when missing) unless
DATABASE_URL says otherwise, and Redis db 11. Two organisations are seeded once and kept between
runs (found again by their slugs): one of --contacts contacts and one of --small, each contact
with a marketing consent and a sent SMS. Other contacts' rows are copies of one real row made by
the services (``INSERT ... SELECT`` over ``generate_series``): their ciphertexts are that row's,
which is fine since nothing decrypts them, and their blind indexes are distinct, so the indexes
are as large as a real organisation's.

Per run and organisation, a real subject is made through the services (contact, consent, an SMS
sent through Infobip, an e-mail through SES, a queued reminder, a file, reads by an API key, an
earlier portability push to a loopback controller), then timed:

1. **access**: ``dsr.access.access_package_build`` (the ZIP with HTML, JSON and the file);
2. **erasure**: ``recipients_collect`` + ``erasure_execute`` + ``recipients_notify`` (mails to
   the locmem backend, the push notice to the loopback controller).

Reported: seconds (median of --runs, after one warm-up) and query counts per step and
organisation. Target: under 2 s each; the query counts must be the same in both organisations
(they may not grow with its size). Prints JSON and a one-line summary. Not part of the test run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._support import ensure_database  # noqa: E402

DB_NAME = "carely_bench_dsr"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")
os.environ.setdefault("CARELY_PUBLIC_BASE_URL", "https://pep.example.test")
CHUNK = 100_000


# --- a loopback controller for the push notices -------------------------------------------------
class _Controller(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _controller() -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Controller)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/gdpr"


# --- seeding (once) -------------------------------------------------------------------------------
def _clone(model: Any, template_pk: int, *, source: str, replace: dict[str, str]) -> int:
    """Copy one row per row of ``source`` (SQL after FROM ... t), with ``replace`` columns."""
    from django.db import connection

    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields if f.column != "id"]
    select = [replace.get(c, f"t.{c}") for c in columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(select)} FROM {table} t, {source} WHERE t.id = %s",
            [template_pk],
        )
        return int(cursor.rowcount)


def _seed(slug: str, count: int) -> Any:
    """The organisation ``slug`` with ``count`` contacts, each with a consent and a sent SMS;
    made once, found again on later runs."""
    from django.db import connection, transaction
    from django.utils import timezone

    from carely.orgs.models import Organisation
    from consent.models import ConsentEntry
    from contacts.models import Contact
    from messaging.models import Message
    from messaging.services import message_enqueue, provider_account_for, template_save

    existing = Organisation.objects.filter(slug=slug).first()
    if existing is not None and Contact.objects.filter(organisation=existing).count() >= count:
        return existing
    if existing is not None:
        raise SystemExit(f"{slug} is half seeded; drop the database {DB_NAME} and run again")
    started = time.perf_counter()
    organisation = Organisation.objects.create(name=f"Bench DSR {count}", slug=slug)
    account = provider_account_for(organisation)
    account.quiet_hours_enabled = False
    account.save()
    template = template_save(
        organisation=organisation,
        name="reminder",
        kind="transactional",
        channel="sms",
        language="sl",
        body="Pozdravljeni {{ first_name }}, termin {{ when }}.",
        variables=["when"],
    )
    first = _patient(organisation, "template")
    message = message_enqueue(
        organisation=organisation,
        contact=first,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        template=template,
        variables={"when": "v petek"},
        dedupe_key="seed",
    )
    Message.objects.filter(pk=message.pk).update(
        status="sent", provider="infobip", provider_message_id="ib-seed", sent_at=timezone.now()
    )
    entry = ConsentEntry.objects.filter(contact=first).order_by("pk").first()
    assert entry is not None
    salt = uuid.uuid4().hex[:8]
    for offset in range(1, count, CHUNK):
        upto = min(offset + CHUNK, count) - 1
        series = f"generate_series({offset}, {upto}) g"
        with transaction.atomic():
            _clone(
                Contact,
                first.pk,
                source=series,
                replace={
                    c: f"substr(md5('{salt}-{c}-' || g), 1, 43)"
                    for c in ("email_bidx", "phone_bidx", "external_id_bidx")
                },
            )
        print(f"{slug}: {upto + 1} contacts", file=sys.stderr, flush=True)
    others = (
        f"(SELECT id FROM contacts_contact WHERE organisation_id = {organisation.pk} "
        f"AND id <> {first.pk}) c"
    )
    with transaction.atomic():
        _clone(ConsentEntry, entry.pk, source=others, replace={"contact_id": "c.id"})
    with transaction.atomic():
        _clone(
            Message,
            message.pk,
            source=others,
            replace={
                "contact_id": "c.id",
                "provider_message_id": "'ib-' || c.id",
                "our_id": "replace(gen_random_uuid()::text, '-', '')",
            },
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"{slug}: seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return organisation


def _patient(organisation: Any, tag: str) -> Any:
    from consent.services import consent_record
    from contacts.services import contact_create

    contact = contact_create(
        organisation=organisation,
        data={
            "first_name": "Bench",
            "last_name": f"Subject {tag}",
            "email": f"subject-{tag}@example.test",
            "phone": f"+38641{uuid.uuid4().int % 1000000:06d}",
            "external_id": f"B-{tag}",
            "relationship_status": "active",
            "birth_date": "1980-02-29",
        },
        source_kind="staff",
    )
    consent_record(
        contact=contact,
        purpose="marketing",
        channel="all",
        status="given",
        source="staff",
        wording_version="1",
    )
    return contact


# --- one subject ----------------------------------------------------------------------------------
def _subject(organisation: Any, push_url: str) -> tuple[Any, Any]:
    """A real subject with a history, and their access request (verified, decided)."""
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from carely.api.services import api_key_create
    from carely.audit.access_log import access_log_record
    from carely.audit.context import Actor
    from files.services import contact_file_add
    from messaging.models import Message, MessageTemplate
    from messaging.services import message_enqueue, template_save

    tag = uuid.uuid4().hex[:10]
    contact = _patient(organisation, tag)
    sms = MessageTemplate.objects.filter(organisation=organisation, name="reminder").latest("pk")
    email = template_save(
        organisation=organisation,
        name="letter",
        kind="transactional",
        channel="email",
        language="sl",
        subject="Izvid",
        body="Pozdravljeni {{ first_name }}, izvid je pripravljen.",
    )
    later = timezone.now() + dt.timedelta(days=2)
    for n, (template, send_at) in enumerate([(sms, later), (sms, None), (email, None)]):
        message_enqueue(
            organisation=organisation,
            contact=contact,
            channel=template.channel,
            kind="transactional",
            purpose="appointment_reminders",
            template=template,
            variables={"when": "v petek"} if template.channel == "sms" else {},
            send_at=send_at,
            dedupe_key=f"bench-{tag}-{n}",
        )
    sent = Message.objects.filter(contact=contact, due_at__lt=later).order_by("pk")
    for message in sent:
        provider = "infobip" if message.channel == "sms" else "ses"
        Message.objects.filter(pk=message.pk).update(
            status="sent", provider=provider, provider_message_id=f"{provider}-{message.pk}"
        )
    contact_file_add(
        contact=contact,
        upload=ContentFile(b"%PDF-1.7 izvid", name="izvid.pdf"),
        kind="document",
        uploaded_by=None,
    )
    key, _ = api_key_create(
        organisation=organisation, name=f"Practice {tag}", scopes=["contacts:read"]
    )
    access_log_record(
        organisation=organisation,
        subject_type="contact",
        subject_id=contact.pk,
        what=["email"],
        actor=Actor.api_key(key.pk),
    )
    earlier = _request(organisation, contact, "portability")
    from dsr.models import PortabilityPush

    PortabilityPush.objects.create(
        organisation=organisation, request=earlier, url=push_url, status_code=202, bytes_sent=10
    )
    return contact, _request(organisation, contact, "access")


def _request(organisation: Any, contact: Any, type_: str) -> Any:
    import secrets

    from django.utils import timezone

    from dsr import deadlines
    from dsr.models import DataSubjectRequest

    now = timezone.now()
    day = deadlines.local_day(now)
    return DataSubjectRequest.objects.create(
        organisation=organisation,
        reference="DSR-" + secrets.token_hex(4).upper(),
        type=type_,
        channel="form",
        state="decided",
        clock_started_on=day,
        due_on=deadlines.due_on(day),
        subject_name=f"{contact.first_name} {contact.last_name}",
        subject_email=contact.email,
        subject_phone=contact.phone,
        contact=contact,
        subject_confirmed_at=now,
        verified_at=now,
        verification_method="code",
        decision="granted",
        decided_at=now,
    )


def _admin(organisation: Any) -> None:
    """An organisation admin, who is told of API clients that read the subject (DSR-12)."""
    from carely.orgs.models import Membership, User
    from carely.orgs.roles import Role

    email = f"admin-{organisation.slug}@example.test"
    user = User.objects.filter(email=email).first() or User.objects.create_user(
        email=email, password=None
    )
    Membership.objects.get_or_create(
        user=user, organisation=organisation, defaults={"role": Role.ORG_ADMIN}
    )


def _timed(step: Any) -> tuple[float, int, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = step()
        seconds = time.perf_counter() - started
    return seconds, len(queries), result


def _one(organisation: Any, push_url: str) -> dict[str, Any]:
    from carely.audit.context import Actor
    from dsr.erasure import erasure_execute
    from dsr.recipients import recipients_collect, recipients_notify

    actor = Actor.system("bench_dsr")
    contact, access_request = _subject(organisation, push_url)
    out: dict[str, Any] = {}
    try:
        from dsr.access import access_package_build
    except ImportError:
        out["access"] = "missing: dsr.access.access_package_build is not committed"
    else:
        seconds, queries, (artifact, _token) = _timed(
            lambda: access_package_build(access_request, actor=actor)
        )
        out["access"] = {"seconds": seconds, "queries": queries, "bytes": artifact.size}
    erasure_request = _request(organisation, contact, "erasure")

    def erase() -> dict[str, Any]:
        recipients = recipients_collect(erasure_request)
        result = erasure_execute(erasure_request, actor=actor)
        notified = recipients_notify(erasure_request, recipients, action="erasure", actor=actor)
        return {
            "result": result,
            "notified": sorted(f"{n.recipient_kind}:{n.outcome}" for n in notified),
        }

    seconds, queries, erased = _timed(erase)
    verification = erased["result"]["verification"]
    out["erasure"] = {
        "seconds": seconds,
        "queries": queries,
        "passed": verification["passed"],
        "storage_checked": verification["storage_checked"],
        "messages_cancelled": erased["result"]["messages_cancelled"],
        "rows": erased["result"]["erased"]["by_model"],
        "notified": erased["notified"],
    }
    return out


def _median(runs: list[dict[str, Any]], step: str) -> dict[str, Any]:
    if any(isinstance(r[step], str) for r in runs):
        return {"missing": runs[0][step]}
    counts = sorted({r[step]["queries"] for r in runs})
    return {
        "seconds_median": round(statistics.median(r[step]["seconds"] for r in runs), 3),
        "seconds_each": [round(r[step]["seconds"], 3) for r in runs],
        "queries": counts[0] if len(counts) == 1 else counts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ensure_database()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    push_url = _controller()
    organisations = {
        "large": _seed(f"bench-dsr-{args.contacts}", args.contacts),
        "small": _seed(f"bench-dsr-{args.small}", args.small),
    }
    for organisation in organisations.values():
        _admin(organisation)
    report: dict[str, Any] = {}
    for name, organisation in organisations.items():
        from contacts.models import Contact

        _one(organisation, push_url)  # warm-up: caches, prepared plans
        runs = [_one(organisation, push_url) for _ in range(args.runs)]
        last = runs[-1]["erasure"]
        report[name] = {
            "contacts": Contact.objects.filter(organisation=organisation).count(),
            "access": _median(runs, "access"),
            "erasure": _median(runs, "erasure"),
            "erasure_passed": all(r["erasure"]["passed"] for r in runs),
            "erasure_storage_checked": last["storage_checked"],
            "erasure_rows": last["rows"],
            "recipients_notified": last["notified"],
        }
    large, small = report["large"], report["small"]
    report["queries_equal"] = all(
        large[step].get("queries") == small[step].get("queries") for step in ("access", "erasure")
    )
    print(json.dumps(report, indent=2, default=str))
    print(
        f"dsr subject: access {large['access'].get('seconds_median')} s "
        f"({large['access'].get('queries')} queries) at {large['contacts']:,} contacts vs "
        f"{small['access'].get('seconds_median')} s at {small['contacts']:,}; erasure "
        f"{large['erasure']['seconds_median']} s ({large['erasure']['queries']} queries) vs "
        f"{small['erasure']['seconds_median']} s; query counts equal: {report['queries_equal']}"
    )


if __name__ == "__main__":
    main()
