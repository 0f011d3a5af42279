"""The fast bulk path (COPY / UPDATE ... FROM VALUES on PostgreSQL, bulk_create / bulk_update
elsewhere) keeps the semantics of contacts_bulk_upsert (CNT-2, CNT-6, DSR-8)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from carely.audit.models import AuditEvent
from contacts.models import ChangeKind, Contact, ContactChange
from contacts.services import (
    contact_create,
    contacts_bulk_apply,
    contacts_bulk_prepare,
    contacts_bulk_upsert,
)

pytestmark = pytest.mark.django_db


def _create(org, **data):
    return contact_create(organisation=org, data=data, source_kind="staff")


def _upsert(org, rows, reason=""):
    return contacts_bulk_upsert(organisation=org, rows=rows, source_kind="import", reason=reason)


def _years_ago(years: int) -> str:
    today = timezone.localdate()
    return today.replace(year=today.year - years, day=min(today.day, 28)).isoformat()


@pytest.mark.obligation("CNT-2")
def test_new_rows_get_ids_encrypted_values_and_blind_indexes(org_a):
    results = _upsert(
        org_a,
        [
            {"first_name": "Špela", "last_name": "Kovačič", "email": "Spela@Primer.si"},
            {"last_name": "Žagar", "phone": "041 123 456", "birth_date": "03.04.1990"},
            {"first_name": "Kid", "email": "teen@primer.si", "birth_date": _years_ago(15)},
        ],
    )
    assert [r.status for r in results] == ["created"] * 3
    ids = [r.id for r in results]
    assert all(ids) and len(set(ids)) == 3
    spela, zagar, teen = (Contact.objects.get(pk=pk) for pk in ids)
    assert (spela.first_name, spela.last_name, spela.email) == (
        "Špela",
        "Kovačič",
        "spela@primer.si",
    )
    assert (zagar.phone, zagar.birth_date) == ("+38641123456", dt.date(1990, 4, 3))
    assert teen.is_minor and not spela.is_minor
    assert spela.source_kind == "import" and spela.organisation == org_a
    assert Contact.objects.filter_blind(email="SPELA@primer.si").get() == spela
    assert Contact.objects.filter_blind(phone="+386 41 123 456").get() == zagar
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_name FROM contacts_contact WHERE id = %s", [spela.pk])
        assert "Kovačič" not in cursor.fetchone()[0]
    # Ids were taken from the table's sequence: an ordinary insert afterwards gets a new one.
    later = _create(org_a, first_name="Later", email="later@primer.si")
    assert later.pk not in ids


@pytest.mark.obligation("CNT-2", "DSR-8")
def test_rows_reaching_one_contact_by_different_keys_update_it_once_in_turn(org_a):
    contact = _create(
        org_a, first_name="Ana", last_name="Old", email="ana@primer.si", external_id="K-1"
    )
    results = _upsert(
        org_a,
        [
            {"external_id": "K-1", "last_name": "Middle"},
            {"email": "ANA@primer.si", "last_name": "New", "phone": "041 555 666"},
        ],
        reason="import from the old system",
    )
    assert [(r.status, r.id) for r in results] == [("updated", contact.pk)] * 2
    contact.refresh_from_db()
    assert (contact.last_name, contact.phone) == ("New", "+38641555666")
    (change,) = ContactChange.objects.filter(contact=contact)
    assert change.kind == ChangeKind.RECTIFICATION
    assert change.reason == "import from the old system"
    assert change.changed() == {
        "last_name": {"before": "Old", "after": "New"},
        "phone": {"before": "", "after": "+38641555666"},
    }
    assert Contact.objects.filter_blind(phone="041 555 666", region="SI").get() == contact
    event = AuditEvent.objects.filter(action="contacts.bulk_upserted").get()
    assert event.details["updated_ids"] == [contact.pk]


@pytest.mark.obligation("CNT-2", "CNT-6", "DSR-8")
def test_different_changed_columns_in_one_batch_are_all_written(org_a):
    a = _create(org_a, first_name="A", email="a@primer.si", external_id="A-1")
    b = _create(org_a, first_name="B", email="b@primer.si")
    c = _create(org_a, first_name="C", phone="+38640111222")
    same = _create(org_a, first_name="Same", email="same@primer.si")
    a_before, same_before = a.updated_at, same.updated_at
    results = _upsert(
        org_a,
        [
            {"external_id": "A-1", "email": "a.new@primer.si"},
            {"email": "b@primer.si", "birth_date": _years_ago(16), "gender": "Female"},
            {"phone": "040 111 222", "external_id": "C-9", "address": "Celovška 1"},
            {"email": "same@primer.si", "first_name": "Same"},
        ],
    )
    assert [r.status for r in results] == ["updated", "updated", "updated", "unchanged"]
    for contact in (a, b, c, same):
        contact.refresh_from_db()
    assert a.email == "a.new@primer.si"
    assert Contact.objects.filter_blind(email="a.new@primer.si").get() == a
    assert not Contact.objects.filter_blind(email="a@primer.si").exists()
    assert b.is_minor and b.gender == "female"
    assert (c.external_id, c.address) == ("C-9", "Celovška 1")
    assert Contact.objects.filter_blind(external_id="C-9").get() == c
    assert ContactChange.objects.filter(contact__in=[a, b, c]).count() == 3
    assert not ContactChange.objects.filter(contact=same).exists()
    assert a.updated_at > a_before and same.updated_at == same_before


@pytest.mark.obligation("CNT-2")
def test_an_email_match_with_another_external_id_is_someone_else(org_a):
    parent = _create(org_a, first_name="Parent", email="family@primer.si", external_id="P-1")
    results = _upsert(
        org_a,
        [
            {"first_name": "Child", "email": "family@primer.si", "external_id": "P-2"},
            {"first_name": "Parent", "email": "family@primer.si"},  # no id: the first match
        ],
    )
    assert results[0].status == "created" and results[0].id != parent.pk
    assert (results[1].status, results[1].id) == ("unchanged", parent.pk)


@pytest.mark.obligation("CNT-2")
def test_a_new_row_is_the_contact_the_model_constructor_would_build(org_a):
    (result,) = _upsert(
        org_a,
        [{"first_name": " Ana ", "email": " Ana@Primer.SI ", "external_id": " X-1 "}],
    )
    built = result.contact
    assert built is not None and built.pk == result.id and not built._state.adding
    # The organisation is the caller's object (no query), the defaults are the model's.
    assert built.organisation is org_a and built.source_kind == "import"
    assert (built.first_name, built.email, built.external_id) == ("Ana", "ana@primer.si", "X-1")
    assert built.relationship_status == "none" and built.guardian_id is None
    assert built.created_at == built.updated_at
    stored = Contact.objects.get(pk=result.id)
    for f in Contact._meta.concrete_fields:
        assert getattr(stored, f.attname) == getattr(built, f.attname), f.attname
    # The digests of the cleaned values (hashed without normalising again) find the contact by
    # any spelling of the keys.
    assert Contact.objects.filter_blind(email="ANA@primer.si ").get() == stored
    assert Contact.objects.filter_blind(external_id="X-1").get() == stored


@pytest.mark.obligation("CNT-2")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.4.1990", dt.date(1990, 4, 3)),
        ("03.04.1990", dt.date(1990, 4, 3)),
        ("3. 4. 1990", dt.date(1990, 4, 3)),
        ("1990-04-03", dt.date(1990, 4, 3)),
        ("29.2.2000", dt.date(2000, 2, 29)),
        ("29.2.1999", None),
        ("31.4.1990", None),
        ("0.4.1990", None),
        ("3.13.1990", None),
        ("3.4.90", None),
        ("٣.4.1990", None),  # not ASCII digits: strptime refuses it too
    ],
)
def test_day_month_year_dates_read_as_strptime_would(org_a, text, expected):
    (result,) = _upsert(
        org_a, [{"first_name": "Ana", "email": "ana@primer.si", "birth_date": text}]
    )
    if expected is None:
        assert result.status == "rejected" and "birth_date" in result.errors
    else:
        assert result.status == "created"
        assert Contact.objects.get(pk=result.id).birth_date == expected


def test_blind_indexes_follow_a_changed_key_and_purposes_stay_checked(settings):
    from carely.lib.keyed_hash import keyed_hash

    before = keyed_hash("ana@primer.si", purpose="email")
    assert keyed_hash("ana@primer.si", purpose="phone") != before
    settings.BLIND_INDEX_KEY = "A" * 43 + "="  # 32 bytes of another key
    after = keyed_hash("ana@primer.si", purpose="email")
    assert after != before
    with pytest.raises(ValueError, match="snake_case"):
        keyed_hash("x", purpose="Not A Purpose")


@pytest.mark.obligation("CNT-2")
def test_values_sealed_ahead_are_used_only_while_they_are_the_contacts_values(org_a):
    """The import's reading process encrypts ahead (seal=True); a later row of the same batch
    that changes a new contact must win over the value sealed for the first row."""
    rows = [
        {"first_name": "Ana", "last_name": "Old", "email": "ana@primer.si", "phone": "041 111 222"},
        {"email": "ANA@primer.si", "last_name": "New"},
        {"first_name": "Bor", "birth_date": "1.2.1980", "phone": "031 000 111"},
    ]
    prepared = contacts_bulk_prepare(organisation=org_a, rows=rows, seal=True)
    assert set(prepared.sealed[0]) == {"first_name", "last_name", "email", "phone"}
    assert "Ana" not in str(prepared.sealed)  # ciphertexts only
    results = contacts_bulk_apply(organisation=org_a, prepared=prepared, source_kind="import")
    assert [r.status for r in results] == ["created", "updated", "created"]
    ana = Contact.objects.get(pk=results[0].id)
    assert (ana.first_name, ana.last_name, ana.phone) == ("Ana", "New", "+38641111222")
    bor = Contact.objects.get(pk=results[2].id)
    assert (bor.first_name, bor.birth_date) == ("Bor", dt.date(1980, 2, 1))
    assert not ContactChange.objects.filter(contact=ana).exists()  # created in this batch
