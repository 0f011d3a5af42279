"""Key rotation: old rows stay readable, the command moves them to the newest key (SEC-8)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from carely.privacy.crypto import DecryptionError
from tests.privacy.conftest import EMAIL, KEY_1, KEY_2
from tests.privacy_probe.models import ProbeNote, ProbePatient

pytestmark = pytest.mark.django_db


def _key_ids():
    with connection.cursor() as cursor:
        cursor.execute("SELECT first_name, email, notes FROM privacy_probe_probepatient")
        return {value.split("$")[1] for row in cursor.fetchall() for value in row if value}


def _rotate(*args):
    out = StringIO()
    call_command("privacy_rotate_keys", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.obligation("SEC-8")
def test_rotation_keeps_old_rows_readable_and_lets_the_old_key_go(field_keys, org_a, make_patient):
    patients = [make_patient(org_a, notes=f"note {i}") for i in range(7)]
    ProbeNote.objects.create(organisation=org_a, patient=patients[0], body="first visit")
    assert _key_ids() == {"k1"}

    field_keys.FIELD_KEYS = f"{KEY_2},{KEY_1}"
    assert ProbePatient.objects.get(pk=patients[3].pk).notes == "note 3"
    newer = make_patient(org_a)
    assert _key_ids() == {"k1", "k2"}

    preview = _rotate("--dry-run", "--batch-size", "3")
    assert preview["models"]["privacy_probe.ProbePatient"] == {
        "rows_scanned": 8,
        "rows_rotated": 7,
        "values_rotated": 7 * 5,  # first and last name, e-mail, phone, notes (no birth date)
    }
    assert _key_ids() == {"k1", "k2"}  # a dry run changes nothing

    report = _rotate("--batch-size", "3")
    assert report["newest_key"] == "k2"
    assert report["models"]["privacy_probe.ProbePatient"]["rows_rotated"] == 7
    assert report["models"]["privacy_probe.ProbeNote"]["values_rotated"] == 1
    assert _key_ids() == {"k2"}
    again = _rotate()
    assert again["models"]["privacy_probe.ProbePatient"]["values_rotated"] == 0  # idempotent

    field_keys.FIELD_KEYS = KEY_2
    assert [p.notes for p in ProbePatient.objects.order_by("pk")] == [
        *[f"note {i}" for i in range(7)],
        "",
    ]
    assert ProbePatient.objects.filter_blind(email=EMAIL).count() == 8
    assert ProbeNote.objects.get().body == "first visit"
    assert newer.pk


def test_removing_a_key_before_rotation_fails_clearly(field_keys, org_a, make_patient):
    make_patient(org_a)
    field_keys.FIELD_KEYS = KEY_2
    with pytest.raises(DecryptionError, match=r"key 'k1'.*privacy_rotate_keys"):
        list(ProbePatient.objects.all())
    with pytest.raises(CommandError, match="ProbePatient row"):
        _rotate()
