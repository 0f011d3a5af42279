"""SEC-4: the audit log is append-only, chained per organisation, and tampering is found."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from carely.audit.chain import chain_verify
from carely.audit.context import Actor, acting_as
from carely.audit.guards import audit_purge_permit
from carely.audit.models import AppendOnlyError, AuditChainHead, AuditEvent, chain_key_for
from carely.audit.services import PersonalDataInAudit, audit_record

pytestmark = pytest.mark.obligation("SEC-4")


def _write(org, n=5):
    return [
        audit_record(action="test.thing", organisation=org, object_type="probe", object_id=i)
        for i in range(n)
    ]


def _raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def _verify(org):
    out = StringIO()
    call_command("audit_verify", "--org", org.slug, stdout=out)
    return out.getvalue()


def test_events_chain_per_organisation(org_a, org_b):
    a = _write(org_a, 3)
    b = _write(org_b, 2)
    assert [e.seq for e in a] == [1, 2, 3] and [e.seq for e in b] == [1, 2]
    assert a[1].prev_hash == a[0].hash and a[2].prev_hash == a[1].hash
    assert b[0].prev_hash == "0" * 64
    head = AuditChainHead.objects.get(chain_key=chain_key_for(org_a.pk))
    assert (head.last_seq, head.last_hash) == (3, a[2].hash)
    assert "3 entries checked, ok" in _verify(org_a)


def test_actor_and_request_id_come_from_the_context(org_a, staff_a):
    with acting_as(Actor.user(staff_a.pk), request_id="req-12345678"):
        event = audit_record(action="test.thing", organisation=org_a)
    assert (event.actor_type, event.actor_id, event.request_id) == (
        "user",
        str(staff_a.pk),
        "req-12345678",
    )


def test_the_model_refuses_update_and_delete(org_a):
    event = _write(org_a, 1)[0]
    event.action = "something.else"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_the_database_refuses_update_and_delete(org_a):
    _write(org_a, 2)
    with pytest.raises(DatabaseError):
        _raw("UPDATE audit_auditevent SET action = 'x'")
    with pytest.raises(DatabaseError):
        _raw("DELETE FROM audit_auditevent")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(organisation=org_a).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(organisation=org_a).delete()
    with pytest.raises(DatabaseError):
        _raw("UPDATE audit_auditchainhead SET last_seq = last_seq - 1")
    assert AuditEvent.objects.filter(organisation=org_a).count() == 2
    assert "2 entries checked, ok" in _verify(org_a)


def _drop_guards():
    """What an intruder with DDL rights does first; verification must still catch the edit."""
    from carely.audit import guards

    with connection.schema_editor() as editor:
        guards.remove(editor)


@pytest.fixture
def unguarded(org_a):
    from carely.audit import guards

    _write(org_a, 5)
    _drop_guards()
    yield org_a
    with connection.schema_editor() as editor:
        guards.install(editor)


def _verify_fails(org, match):
    with pytest.raises(CommandError, match=match):
        _verify(org)


@pytest.mark.django_db(transaction=True)
def test_altered_row_is_found_by_audit_verify(unguarded):
    _raw("UPDATE audit_auditevent SET object_id = '99' WHERE seq = 3")
    _verify_fails(unguarded, r"broken at entry #3 .*altered")


@pytest.mark.django_db(transaction=True)
def test_deleted_row_is_found(unguarded):
    _raw("DELETE FROM audit_auditevent WHERE seq = 2")
    _verify_fails(unguarded, r"broken at entry #3 .*missing")


@pytest.mark.django_db(transaction=True)
def test_deleted_tail_is_found_through_the_head(unguarded):
    _raw("DELETE FROM audit_auditevent WHERE seq = 5")
    _verify_fails(unguarded, r"broken at entry #5: .*only 4 remain")


@pytest.mark.django_db(transaction=True)
def test_reordered_rows_are_found(unguarded):
    # Swap the positions of entries 2 and 3 (seq is unique, so go through a free number).
    _raw("UPDATE audit_auditevent SET seq = 1000 WHERE seq = 2")
    _raw("UPDATE audit_auditevent SET seq = 2 WHERE seq = 3")
    _raw("UPDATE audit_auditevent SET seq = 3 WHERE seq = 1000")
    _verify_fails(unguarded, r"broken at entry #2")


@pytest.mark.django_db(transaction=True)
def test_rehashing_without_the_key_does_not_help(unguarded):
    # An intruder recomputes a plain SHA-256 for the edited row: the chain uses an HMAC.
    import hashlib

    forged = hashlib.sha256(b"forged").hexdigest()
    _raw("UPDATE audit_auditevent SET action = 'x', hash = %s WHERE seq = 5", [forged])
    _raw("UPDATE audit_auditchainhead SET last_hash = %s", [forged])
    _verify_fails(unguarded, r"broken at entry #5")


def test_verify_reports_json_and_other_chains_stay_valid(org_a, org_b):
    _write(org_a, 2)
    _write(org_b, 2)
    out = StringIO()
    call_command("audit_verify", "--json", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["ok"] is True
    assert {c["chain"] for c in payload["chains"]} >= {f"org:{org_a.pk}", f"org:{org_b.pk}"}


def test_exit_purge_of_one_tenant_leaves_the_other_chain_intact(org_a, org_b):
    _write(org_a, 3)
    _write(org_b, 3)
    key = chain_key_for(org_a.pk)
    with audit_purge_permit(key):
        AuditEvent.objects.filter(chain_key=key)._raw_delete(AuditEvent.objects.db)
        AuditChainHead.objects.filter(chain_key=key)._raw_delete(AuditChainHead.objects.db)
    assert not AuditEvent.objects.filter(chain_key=key).exists()
    assert chain_verify(chain_key_for(org_b.pk)).ok
    # The permit was for org A only, and it ended with the block.
    with pytest.raises(DatabaseError):
        _raw("DELETE FROM audit_auditevent")


@pytest.mark.parametrize(
    "details",
    [
        {"email": "ana.novak@example.si"},
        {"phone": "+386 41 123 456"},
        {"note": "x" * 200},
        {"nested": {"list": ["ok", "041123456"]}},
    ],
)
def test_personal_looking_details_are_refused(org_a, details):
    with pytest.raises(PersonalDataInAudit):
        audit_record(action="test.thing", organisation=org_a, details=details)
    assert not AuditEvent.objects.exists()


def test_platform_chain_for_events_without_an_organisation(db):
    event = audit_record(action="platform.thing")
    assert event.chain_key == "platform" and event.organisation_id is None
    assert chain_verify("platform").ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_processes_leave_valid_chains():
    """Two (here four) real processes write at once; no chain forks and no event is lost."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite test databases live in memory")
    settings = connection.settings_dict
    url = (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            str(root / "bench" / "audit_chain.py"),
            "--events",
            "400",
            "--processes",
            "4",
            "--organisations",
            "2",
            "--no-baseline",
        ],
        env={**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "carely.settings"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert payload["chains_ok"] is True
    assert payload["events_written"] == 400
    for key in {e["chain_key"] for e in AuditEvent.objects.values("chain_key")}:
        seqs = list(AuditEvent.objects.filter(chain_key=key).values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))


def test_keyed_hashes_are_accepted_under_hash_keys_and_nothing_else_is(org_a):
    from carely.lib.keyed_hash import keyed_hash

    digest = keyed_hash("ana.novak@example.si", purpose="login")
    audit_record(action="test.thing", organisation=org_a, details={"login_hash": digest})
    with pytest.raises(PersonalDataInAudit, match="not a keyed hash"):
        audit_record(
            action="test.thing", organisation=org_a, details={"login_hash": "ana@example.si"}
        )
