"""``/api/v1/contacts/`` (CNT-1..CNT-4, TEN-1, SEC-3): tenancy, scopes, access log, errors."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carely.audit.models import AccessLogEntry
from contacts.models import ChangeKind, Contact, ContactChange
from contacts.services import contact_create, contact_restrict

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"
PROBLEM = "application/problem+json"


def _make(org, **data):
    data.setdefault("first_name", "Ana")
    return contact_create(organisation=org, data=data, source_kind="staff")


@pytest.mark.obligation("CNT-1", "CNT-2")
def test_create_returns_the_contact_with_the_phone_in_e164(api_a, org_a):
    body = {
        "first_name": "Ana",
        "last_name": "Novak",
        "birth_date": "1984-03-21",
        "gender": "female",
        "external_id": "K-17",
        "email": "ana@example.test",
        "phone": "041 123 456",
        "preferred_language": "sl",
        "address": "Trubarjeva 1, Ljubljana",
        "source": "reception desk, paper form 2025-01",
        "relationship_status": "active",
        "relationship_started_at": "2024-01-10",
        "relationship_ended_at": None,
    }
    response = api_a.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["phone"] == "+38641123456"
    assert data["source_kind"] == "api" and data["restricted"] is False
    for name, value in body.items():
        if name != "phone":
            assert data[name] == value
    contact = Contact.objects.get(pk=data["id"])
    assert contact.organisation == org_a and contact.email == "ana@example.test"


@pytest.mark.obligation("CNT-1", "CNT-6")
def test_create_errors_are_problems_naming_each_field(api_a, org_a):
    response = api_a.post(URL, {"preferred_language": "sl"}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"first_name", "last_name", "email", "phone"}
    child = {"first_name": "Mia", "email": "m@example.test", "birth_date": "2020-01-01"}
    response = api_a.post(URL, child, format="json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "birth_date" and "under 13" in error["message"]
    assert not Contact.objects.exists()


@pytest.mark.obligation("TEN-1")
def test_another_organisations_contact_is_not_found(api_b, org_a):
    contact = _make(org_a, email="ana@example.test")
    url = f"{URL}{contact.pk}/"
    for response in (api_b.get(url), api_b.patch(url, {"first_name": "X"}, format="json")):
        assert response.status_code == 404
        assert response["Content-Type"] == PROBLEM
    contact.refresh_from_db()
    assert contact.first_name == "Ana"
    assert api_b.get(URL).json()["results"] == []
    assert api_b.get(URL, {"email": "ana@example.test"}).json()["results"] == []


@pytest.mark.obligation("CNT-3", "TEN-1")
def test_list_shows_own_contacts_and_logs_each_read(api_a, api_b, org_a, org_b):
    mine = [_make(org_a, email=f"a{i}@example.test") for i in range(3)]
    _make(org_b, email="b@example.test")
    response = api_a.get(URL)
    assert [c["id"] for c in response.json()["results"]] == [c.pk for c in reversed(mine)]
    logged = AccessLogEntry.objects.filter(organisation=org_a, subject_type="contact")
    assert sorted(int(e.subject_id) for e in logged) == sorted(c.pk for c in mine)
    assert all(e.actor_type == "api_key" and "email" in e.what for e in logged)


@pytest.mark.obligation("CNT-3")
def test_reading_one_contact_is_logged(api_a, org_a):
    contact = _make(org_a, email="ana@example.test")
    response = api_a.get(f"{URL}{contact.pk}/")
    assert response.status_code == 200 and response.json()["email"] == "ana@example.test"
    (entry,) = AccessLogEntry.objects.filter(subject_type="contact")
    assert entry.subject_id == str(contact.pk) and entry.action == "view"


@pytest.mark.obligation("CNT-2")
def test_list_filters_by_blind_index_date_and_status(api_a, org_a):
    ana = _make(org_a, email="Ana@Example.test", phone="041 123 456", external_id="K-1")
    bor = _make(org_a, email="bor@example.test", relationship_status="active")

    def ids(**params):
        response = api_a.get(URL, params)
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["results"]]

    assert ids(email="ana@example.TEST") == [ana.pk]
    assert ids(phone="+386 41 123 456") == [ana.pk]
    assert ids(phone="041123456") == [ana.pk]
    assert ids(external_id="K-1") == [ana.pk]
    assert ids(relationship_status="active") == [bor.pk]
    Contact.objects.filter(pk=ana.pk).update(updated_at=timezone.now() - timezone.timedelta(days=3))
    since = (timezone.now() - timezone.timedelta(days=1)).isoformat()
    assert ids(updated_since=since) == [bor.pk]
    bad = api_a.get(URL, {"phone": "12", "updated_since": "yesterday"})
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"phone", "updated_since"}


@pytest.mark.obligation("CNT-2")
def test_list_query_count_is_constant(api_a, org_a, django_assert_num_queries):
    api_a.get(URL)  # the first request of the minute also records the key's last use
    for i in range(3):
        _make(org_a, email=f"a{i}@example.test")
    # The key, the page, the page's tags, one access-log insert for the page.
    with django_assert_num_queries(4):
        assert len(api_a.get(URL).json()["results"]) == 3
    Contact.objects.bulk_create(
        Contact(organisation=org_a, first_name=f"N{i}", email=f"n{i}@example.test")
        for i in range(30)
    )
    with django_assert_num_queries(4):
        assert len(api_a.get(URL).json()["results"]) == 33


@pytest.mark.obligation("DSR-8")
def test_patch_records_the_reason_and_the_api_key(api_a, org_a):
    contact = _make(org_a, email="ana@example.test")
    response = api_a.patch(
        f"{URL}{contact.pk}/",
        {"email": "ana.novak@example.test", "reason": "patient e-mail"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["email"] == "ana.novak@example.test"
    (change,) = ContactChange.objects.filter(contact=contact)
    assert change.kind == ChangeKind.RECTIFICATION and change.reason == "patient e-mail"
    assert change.actor_type == "api_key"
    assert change.changed()["email"]["before"] == "ana@example.test"
    bad = api_a.patch(f"{URL}{contact.pk}/", {"email": "", "phone": ""}, format="json")
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"email", "phone"}


@pytest.mark.obligation("CNT-4")
def test_writes_to_a_restricted_contact_are_refused(api_a, org_a):
    contact = _make(org_a, email="ana@example.test", external_id="K-1")
    contact_restrict(contact=contact, reason="accuracy contested")
    response = api_a.patch(f"{URL}{contact.pk}/", {"first_name": "X"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "contact_restricted" and "restricted" in body["detail"]
    response = api_a.post(
        f"{URL}bulk-upsert/",
        {"contacts": [{"external_id": "K-1", "first_name": "X"}]},
        format="json",
    )
    (result,) = response.json()["results"]
    assert result["status"] == "rejected" and "restricted" in result["errors"][0]["message"]
    contact.refresh_from_db()
    assert contact.first_name == "Ana"


@pytest.mark.obligation("SEC-3")
def test_writing_needs_the_write_scope(api_a_read_only, org_a):
    contact = _make(org_a, email="ana@example.test")
    assert api_a_read_only.get(URL).status_code == 200
    for response in (
        api_a_read_only.post(URL, {"first_name": "A", "email": "a@b.si"}, format="json"),
        api_a_read_only.patch(f"{URL}{contact.pk}/", {"first_name": "X"}, format="json"),
        api_a_read_only.post(f"{URL}bulk-upsert/", {"contacts": []}, format="json"),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "missing_scope"


def test_without_a_key_there_is_nothing(client, org_a):
    _make(org_a, email="ana@example.test")
    assert client.get(URL).status_code == 401


@pytest.mark.obligation("CNT-2")
def test_bulk_upsert_keeps_good_rows_and_reports_each_bad_one(api_a, org_a, org_b):
    existing = _make(org_a, email="old@example.test", external_id="K-1", last_name="Old")
    same = _make(org_a, email="same@example.test", first_name="Same")
    _make(org_b, email="new@example.test")  # another organisation's: never matched
    rows = [
        {"first_name": "New", "email": "new@example.test"},  # created
        {"external_id": "K-1", "last_name": "Novak", "phone": ""},  # updated, blank kept
        {"email": "SAME@example.test", "first_name": "Same"},  # unchanged
        {"first_name": "Bad", "phone": "12"},  # rejected: phone
        {"first_name": "Kid", "email": "kid@example.test", "birth_date": "2020-05-05"},
        {"email": "nobody@example.test"},  # rejected: new and without a name
        {"first_name": "Ne", "email": "NEW@example.test", "phone": "041 222 333"},  # = row 0
        "not an object",
    ]
    response = api_a.post(f"{URL}bulk-upsert/", {"contacts": rows}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [
        "created",
        "updated",
        "unchanged",
        "rejected",
        "rejected",
        "rejected",
        "updated",
        "rejected",
    ]
    assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (1, 2, 1, 4)
    results = body["results"]
    assert [e["field"] for e in results[3]["errors"]] == ["phone"]
    assert [e["field"] for e in results[4]["errors"]] == ["birth_date"]
    assert {e["field"] for e in results[5]["errors"]} == {"first_name", "last_name"}
    assert results[1]["id"] == existing.pk and results[2]["id"] == same.pk
    assert results[0]["id"] == results[6]["id"]
    new = Contact.objects.get(pk=results[0]["id"])
    assert (new.organisation, new.first_name, new.phone) == (org_a, "Ne", "+38641222333")
    assert new.source_kind == "api"
    existing.refresh_from_db()
    assert existing.last_name == "Novak" and existing.email == "old@example.test"
    (change,) = ContactChange.objects.filter(contact=existing)
    assert change.changed() == {"last_name": {"before": "Old", "after": "Novak"}}
    assert Contact.objects.filter_blind(phone="041 222 333", region="SI").get() == new
    assert Contact.objects.for_organisation(org_a).count() == 3


@pytest.mark.obligation("CNT-2", "CNT-6")
def test_bulk_upsert_updates_blind_indexes_and_minor_flag(api_a, org_a):
    contact = _make(org_a, email="ana@example.test", external_id="K-1")
    teen = (timezone.localdate().replace(year=timezone.localdate().year - 15)).isoformat()
    rows = [{"external_id": "K-1", "phone": "041 555 666", "birth_date": teen}]
    assert api_a.post(f"{URL}bulk-upsert/", {"contacts": rows}, format="json").status_code == 200
    contact.refresh_from_db()
    assert contact.is_minor
    assert Contact.objects.filter_blind(phone="+38641555666").get() == contact


def test_bulk_upsert_refuses_more_than_a_thousand(api_a):
    rows = [{"first_name": "A", "email": f"a{i}@example.test"} for i in range(1001)]
    response = api_a.post(f"{URL}bulk-upsert/", {"contacts": rows}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "contacts"
    assert not Contact.objects.exists()


def test_schema_lists_the_contact_endpoints(client):
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert {"/api/v1/contacts/", "/api/v1/contacts/{id}/", "/api/v1/contacts/bulk-upsert/"} <= set(
        paths
    )
