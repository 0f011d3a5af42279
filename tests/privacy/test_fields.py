"""Encrypted fields and blind indexes on a real table (SEC-8)."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from carely.lib.normalise import InvalidPhoneNumber
from carely.privacy.crypto import DecryptionError
from carely.privacy.fields import EncryptedLookupRefused
from tests.privacy.conftest import EMAIL
from tests.privacy_probe.models import ProbePatient

pytestmark = pytest.mark.django_db

PLAINTEXTS = ["Novak", "ana.novak", "Example.SI", "example.si", "41123456", "123 456", "1984-02-29"]


def _raw_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM privacy_probe_probepatient")
        return cursor.fetchall()


@pytest.mark.obligation("SEC-8")
def test_the_table_holds_no_plaintext_but_the_model_reads_it_back(org_a, make_patient):
    patient = make_patient(org_a, birth_date=dt.date(1984, 2, 29), notes="Allergic to penicillin")
    text = repr(_raw_rows())
    for plain in [*PLAINTEXTS, "penicillin"]:
        assert plain.lower() not in text.lower()
    assert "e1$" in text
    again = ProbePatient.objects.get(pk=patient.pk)
    assert (again.email, again.phone, again.last_name) == (EMAIL, "+386 41 123 456", "Novak")
    assert again.birth_date == dt.date(1984, 2, 29)
    assert again.notes == "Allergic to penicillin"


@pytest.mark.obligation("SEC-8")
def test_the_database_bytes_hold_no_plaintext(org_a, make_patient):
    make_patient(org_a, birth_date=dt.date(1984, 2, 29))
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        data = connection.connection.serialize().lower()  # the whole database file, as bytes
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT row_to_json(p)::text FROM privacy_probe_probepatient p")
            data = "".join(r[0] for r in cursor.fetchall()).lower().encode()
    assert b"e1$k" in data
    for plain in PLAINTEXTS:
        assert plain.lower().encode() not in data, plain


@pytest.mark.obligation("SEC-8")
def test_equality_lookup_through_the_blind_index(org_a, org_b, make_patient):
    patient = make_patient(org_a)
    make_patient(org_b)  # same e-mail in another clinic
    scoped = ProbePatient.objects.for_organisation(org_a)
    assert list(scoped.filter_blind(email="  ana.novak@example.si")) == [patient]
    assert list(scoped.filter_blind(phone="041123456", region="SI")) == [patient]
    assert list(scoped.filter_blind(phone="041 123 456", region="si")) == [patient]
    assert list(scoped.filter_blind(phone="+38641123456")) == [patient]
    assert list(scoped.filter_blind(email="other@example.si")) == []
    assert ProbePatient.objects.filter_blind(email=EMAIL).count() == 2


def test_a_national_number_without_a_region_says_what_to_do(org_a):
    with pytest.raises(InvalidPhoneNumber, match="country code"):
        ProbePatient.objects.filter_blind(phone="041 123 456").count()


def test_bulk_create_fills_the_blind_indexes(org_a):
    ProbePatient.objects.bulk_create(
        [ProbePatient(organisation=org_a, first_name=f"P{i}", email=f"p{i}@X.si") for i in range(5)]
    )
    assert ProbePatient.objects.filter_blind(email="P3@x.SI").get().first_name == "P3"
    assert ProbePatient.objects.filter(phone_bidx__isnull=True).count() == 5


def test_saving_only_the_source_field_updates_its_index(org_a, make_patient):
    patient = make_patient(org_a)
    patient.email = "new@example.si"
    patient.save(update_fields=["email"])
    assert ProbePatient.objects.filter_blind(email="NEW@example.si").get() == patient
    assert not ProbePatient.objects.filter_blind(email=EMAIL).exists()


def test_filters_on_encrypted_columns_are_refused_with_a_pointer_to_the_index(org_a):
    with pytest.raises(EncryptedLookupRefused, match="blind index"):
        ProbePatient.objects.filter(email=EMAIL)
    with pytest.raises(EncryptedLookupRefused, match="icontains"):
        ProbePatient.objects.filter(last_name__icontains="nov")
    assert ProbePatient.objects.filter(birth_date__isnull=True).count() == 0


def test_max_length_applies_to_the_plaintext(org_a):
    patient = ProbePatient(organisation=org_a, first_name="x" * 101)
    with pytest.raises(ValidationError) as info:
        patient.full_clean()
    assert "first_name" in info.value.message_dict
    ProbePatient(organisation=org_a, first_name="x" * 100).full_clean()


def test_empty_and_null_values_round_trip(org_a, make_patient):
    patient = make_patient(org_a, email="", phone="", birth_date=None)
    again = ProbePatient.objects.get(pk=patient.pk)
    assert (again.email, again.phone, again.birth_date) == ("", "", None)
    assert again.email_bidx is None


@pytest.mark.obligation("SEC-8")
def test_a_ciphertext_moved_to_another_column_does_not_decrypt(org_a, make_patient):
    patient = make_patient(org_a)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE privacy_probe_probepatient SET last_name = first_name WHERE id = %s",
            [patient.pk],
        )
    with pytest.raises(DecryptionError, match=r"probepatient.last_name.*another table or column"):
        ProbePatient.objects.get(pk=patient.pk)


@pytest.mark.obligation("SEC-8")
def test_a_tampered_ciphertext_is_detected(org_a, make_patient):
    patient = make_patient(org_a)
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM privacy_probe_probepatient WHERE id = %s", [patient.pk])
        token = cursor.fetchone()[0]
        flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
        cursor.execute(
            "UPDATE privacy_probe_probepatient SET email = %s WHERE id = %s", [flipped, patient.pk]
        )
    with pytest.raises(DecryptionError, match="altered"):
        ProbePatient.objects.get(pk=patient.pk)
