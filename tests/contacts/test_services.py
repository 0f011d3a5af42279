"""Contact rules through the services (CNT-1, CNT-2, CNT-4, CNT-6, DSR-8)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from carely.audit.models import AuditEvent
from carely.orgs.suspension import OrganisationSuspended
from contacts.models import ChangeKind, Contact, ContactChange
from contacts.services import (
    ContactInvalid,
    ContactRestricted,
    RestrictionError,
    contact_create,
    contact_lift_restriction,
    contact_match,
    contact_restrict,
    contact_statement_add,
    contact_update,
)

pytestmark = pytest.mark.django_db


def _years_ago(years: int, days: int = 0) -> dt.date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) - dt.timedelta(days=days)


def _create(org, **data):
    return contact_create(organisation=org, data=data, source_kind="staff")


@pytest.mark.obligation("CNT-1")
def test_a_name_and_one_channel_are_enough(org_a):
    contact = _create(org_a, last_name="Novak", phone="041 123 456")
    contact.refresh_from_db()
    assert contact.last_name == "Novak"
    assert contact.phone == "+38641123456"  # E.164 with the organisation's region (SI)
    assert contact.first_name == "" and contact.birth_date is None and contact.email == ""
    assert contact.relationship_status == "none"


@pytest.mark.obligation("CNT-1")
def test_missing_name_or_channel_names_the_fields(org_a):
    with pytest.raises(ContactInvalid) as caught:
        _create(org_a, preferred_language="sl")
    assert set(caught.value.errors) == {"first_name", "last_name", "email", "phone"}
    assert "first or a last name" in caught.value.errors["first_name"][0]
    assert "e-mail address or a phone number" in caught.value.errors["email"][0]
    assert Contact.objects.count() == 0


@pytest.mark.obligation("CNT-1")
def test_bad_values_get_errors_a_receptionist_can_act_on(org_a):
    with pytest.raises(ContactInvalid) as caught:
        _create(
            org_a,
            first_name="Ana",
            email="ana(at)example",
            phone="12",
            birth_date="31.02.1980",
            gender="x",
        )
    errors = caught.value.errors
    assert set(errors) == {"email", "phone", "birth_date", "gender"}
    assert "not an e-mail address" in errors["email"][0]
    assert "not a valid phone number" in errors["phone"][0] or "not a phone" in errors["phone"][0]
    assert "YYYY-MM-DD" in errors["birth_date"][0]


@pytest.mark.obligation("CNT-1")
def test_phone_region_comes_from_the_organisation(org_a, org_b):
    org_b.default_phone_region = "AT"
    org_b.save()
    assert _create(org_a, first_name="A", phone="041 123 456").phone == "+38641123456"
    assert _create(org_b, first_name="B", phone="0664 1234567").phone == "+436641234567"
    assert _create(org_b, first_name="C", phone="+386 41 123 456").phone == "+38641123456"


@pytest.mark.obligation("CNT-6")
def test_under_13_is_refused_and_13_to_17_is_flagged(org_a):
    with pytest.raises(ContactInvalid) as caught:
        _create(org_a, first_name="Child", email="c@example.test", birth_date=_years_ago(12, 360))
    assert "under 13" in caught.value.errors["birth_date"][0]
    teen = _create(org_a, first_name="Teen", email="t@example.test", birth_date=_years_ago(13))
    adult = _create(org_a, first_name="Adult", email="a@example.test", birth_date=_years_ago(18))
    assert teen.is_minor and not adult.is_minor
    guardian = _create(org_a, first_name="Parent", email="p@example.test")
    contact_update(contact=teen, data={"guardian": guardian.pk}, reason="parent registered")
    teen.refresh_from_db()
    assert teen.guardian_id == guardian.pk
    contact_update(contact=teen, data={"birth_date": _years_ago(30)}, reason="typo")
    teen.refresh_from_db()
    assert not teen.is_minor


@pytest.mark.obligation("TEN-1")
def test_a_guardian_must_be_of_the_same_organisation(org_a, org_b):
    other = _create(org_b, first_name="Elsewhere", email="e@example.test")
    with pytest.raises(ContactInvalid) as caught:
        contact_create(
            organisation=org_a,
            data={"first_name": "T", "email": "t@example.test", "guardian": other.pk},
            source_kind="staff",
        )
    assert "guardian" in caught.value.errors


@pytest.mark.obligation("CNT-2")
def test_duplicates_are_matched_on_external_id_then_email_then_phone(org_a, org_b):
    by_id = _create(org_a, first_name="Id", external_id="K-1", email="x@example.test")
    by_email = _create(org_a, first_name="Mail", email="Same@Example.test")
    by_phone = _create(org_a, first_name="Phone", phone="+38641000111")
    _create(org_b, first_name="B", external_id="K-2", email="b@example.test")

    match = contact_match
    assert match(organisation=org_a, external_id="K-1", email="same@example.test") == by_id
    assert match(organisation=org_a, email="same@example.TEST", phone="041 000 111") == by_email
    assert match(organisation=org_a, phone="041 000 111") == by_phone
    assert match(organisation=org_a, external_id="K-9", phone="041 000 111") == by_phone
    # A contact with another external id is someone else, even on the same e-mail.
    assert match(organisation=org_a, external_id="K-9", email="x@example.test") is None
    # Never across organisations.
    assert match(organisation=org_a, external_id="K-2") is None
    assert match(organisation=org_a, email="nobody@example.test") is None
    assert match(organisation=org_a, phone="not a phone") is None


@pytest.mark.obligation("DSR-8")
def test_rectification_keeps_before_after_who_and_why(org_a, as_staff_a):
    contact = _create(org_a, first_name="Ana", email="ana@example.test")
    changes = contact_update(
        contact=contact,
        data={"email": "ana.novak@example.test", "first_name": "Ana"},
        reason="patient called",
    )
    assert changes == {"email": {"before": "ana@example.test", "after": "ana.novak@example.test"}}
    (change,) = ContactChange.objects.for_organisation(org_a).filter(contact=contact)
    assert change.kind == ChangeKind.RECTIFICATION
    assert change.changed() == changes
    assert change.reason == "patient called"
    assert (change.actor_type, change.actor_id) == ("user", str(as_staff_a.pk))
    assert contact_update(contact=contact, data={"first_name": "Ana"}, reason="") == {}
    assert ContactChange.objects.filter(contact=contact).count() == 1  # nothing changed
    assert Contact.objects.filter_blind(email="ana.novak@example.test").get() == contact
    event = AuditEvent.objects.filter(action="contact.updated").get()
    assert event.object_id == str(contact.pk) and event.details == {"fields": ["email"]}


@pytest.mark.obligation("DSR-8")
def test_history_and_contacts_are_encrypted_at_rest(org_a):
    contact = _create(org_a, first_name="Zdenka", email="zdenka@example.test")
    contact_update(contact=contact, data={"last_name": "Kovač"}, reason="married name Kovač")
    contact_statement_add(contact=contact, statement="Also known as Zdenka Kovač-Novak")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM contacts_contactchange")
        changes = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM contacts_contact")
        contacts = repr(cursor.fetchall())
    for plain in ("Kovač", "Zdenka", "married", "zdenka@example.test"):
        assert plain not in changes and plain not in contacts
    statement = ContactChange.objects.get(kind=ChangeKind.SUPPLEMENTARY_STATEMENT)
    assert statement.statement == "Also known as Zdenka Kovač-Novak"


@pytest.mark.obligation("CNT-4")
def test_restriction_blocks_changes_and_lifting_needs_the_informed_record(org_a):
    contact = _create(org_a, first_name="Ana", email="ana@example.test")
    with pytest.raises(RestrictionError):
        contact_restrict(contact=contact, reason=" ")
    contact_restrict(contact=contact, reason="DSR 2025-14: accuracy contested")
    with pytest.raises(ContactRestricted, match="restricted"):
        contact_update(contact=contact, data={"first_name": "Anja"}, reason="")
    with pytest.raises(RestrictionError, match="informed"):
        contact_lift_restriction(contact=contact, informed_at=None, informed_how="")
    with pytest.raises(RestrictionError, match="informed"):
        contact_lift_restriction(contact=contact, informed_at=timezone.now(), informed_how=" ")
    contact.refresh_from_db()
    assert contact.is_restricted
    informed = timezone.now() - dt.timedelta(hours=1)
    contact_lift_restriction(contact=contact, informed_at=informed, informed_how="letter")
    contact.refresh_from_db()
    assert not contact.is_restricted
    assert contact.restriction_lift_informed_how == "letter"
    assert contact.restriction_lift_informed_at == informed
    contact_update(contact=contact, data={"first_name": "Anja"}, reason="now allowed")
    kinds = list(ContactChange.objects.filter(contact=contact).values_list("kind", flat=True))
    assert kinds == ["restricted", "restriction_lifted", "rectification"]


@pytest.mark.obligation("TEN-3")
def test_a_suspended_organisation_cannot_write(org_a):
    contact = _create(org_a, first_name="Ana", email="ana@example.test")
    org_a.suspended_at = timezone.now()
    org_a.save()
    contact.refresh_from_db()
    with pytest.raises(OrganisationSuspended):
        _create(org_a, first_name="Bo", email="bo@example.test")
    with pytest.raises(OrganisationSuspended):
        contact_update(contact=contact, data={"first_name": "X"}, reason="")
