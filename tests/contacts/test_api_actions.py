"""``/api/v1/contacts/{id}/restrict/``, ``lift-restriction/`` (CNT-4) and ``statements/``
(DSR-8): each goes through the service, answers problem+json naming the bad fields, 409 when
the restriction state does not allow it, 404 across organisations."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carely.audit.models import AuditEvent
from contacts.models import ChangeKind, Contact, ContactChange
from contacts.services import contact_create, contact_restrict

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"
PROBLEM = "application/problem+json"


def _make(org, **data):
    data.setdefault("first_name", "Ana")
    data.setdefault("email", "ana@example.test")
    return contact_create(organisation=org, data=data, source_kind="staff")


def _url(contact, action):
    return f"{URL}{contact.pk}/{action}/"


def _fields(response):
    assert response["Content-Type"] == PROBLEM
    return {e["field"] for e in response.json()["errors"]}


def _informed(**delta):
    return (timezone.now() - dt.timedelta(hours=1) + dt.timedelta(**delta)).isoformat()


@pytest.mark.obligation("CNT-4")
def test_restrict_then_lift_and_patch_follows_the_state(api_a, org_a):
    contact = _make(org_a)
    response = api_a.post(_url(contact, "restrict"), {"reason": "DSR-2026-7"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["id"] == contact.pk and body["restricted"] is True
    assert body["restricted_at"] and body["restriction_lifted_at"] is None
    contact.refresh_from_db()
    assert contact.is_restricted and contact.restriction_reason == "DSR-2026-7"

    patch = api_a.patch(f"{URL}{contact.pk}/", {"first_name": "X"}, format="json")
    assert patch.status_code == 409 and patch.json()["code"] == "contact_restricted"

    informed_at = _informed()
    response = api_a.post(
        _url(contact, "lift-restriction"),
        {"informed_at": informed_at, "informed_how": "e-mail to the address on file"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["restricted"] is False and body["restricted_at"] is None
    assert body["restriction_lifted_at"]
    assert body["restriction_lift_informed_how"] == "e-mail to the address on file"
    contact.refresh_from_db()
    assert not contact.is_restricted
    assert contact.restriction_lift_informed_at == dt.datetime.fromisoformat(informed_at)

    patch = api_a.patch(f"{URL}{contact.pk}/", {"first_name": "Ana Marija"}, format="json")
    assert patch.status_code == 200, patch.json()
    assert patch.json()["first_name"] == "Ana Marija"

    kinds = list(ContactChange.objects.filter(contact=contact).values_list("kind", flat=True))
    assert kinds == [ChangeKind.RESTRICTED, ChangeKind.RESTRICTION_LIFTED, ChangeKind.RECTIFICATION]
    restricted = ContactChange.objects.get(contact=contact, kind=ChangeKind.RESTRICTED)
    assert restricted.actor_type == "api_key" and restricted.reason == "DSR-2026-7"
    actions = set(
        AuditEvent.objects.filter(object_type="contact", object_id=str(contact.pk)).values_list(
            "action", flat=True
        )
    )
    assert {"contact.restricted", "contact.restriction_lifted"} <= actions


@pytest.mark.obligation("CNT-4")
def test_restrict_without_a_reason_names_it(api_a, org_a):
    contact = _make(org_a)
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        response = api_a.post(_url(contact, "restrict"), body, format="json")
        assert response.status_code == 400
        assert _fields(response) == {"reason"}
    contact.refresh_from_db()
    assert not contact.is_restricted


@pytest.mark.obligation("CNT-4")
def test_restricting_twice_is_a_conflict(api_a, org_a):
    contact = _make(org_a)
    contact_restrict(contact=contact, reason="accuracy contested")
    response = api_a.post(_url(contact, "restrict"), {"reason": "again"}, format="json")
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert "already restricted" in response.json()["detail"]
    contact.refresh_from_db()
    assert contact.restriction_reason == "accuracy contested"


@pytest.mark.obligation("CNT-4")
def test_lifting_needs_when_and_how_the_person_was_informed(api_a, org_a):
    contact = _make(org_a)
    contact_restrict(contact=contact, reason="accuracy contested")
    url = _url(contact, "lift-restriction")

    response = api_a.post(url, {"informed_at": _informed()}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"informed_how"}

    response = api_a.post(url, {}, format="json")
    assert response.status_code == 400
    assert _fields(response) == {"informed_at", "informed_how"}

    future = api_a.post(
        url, {"informed_at": _informed(days=2), "informed_how": "phone"}, format="json"
    )
    assert future.status_code == 400
    (error,) = future.json()["errors"]
    assert error["field"] == "informed_at" and "future" in error["message"]

    garbled = api_a.post(url, {"informed_at": "yesterday", "informed_how": "x"}, format="json")
    assert garbled.status_code == 400
    assert _fields(garbled) == {"informed_at"}

    contact.refresh_from_db()
    assert contact.is_restricted


@pytest.mark.obligation("CNT-4")
def test_lifting_an_unrestricted_contact_is_a_conflict(api_a, org_a):
    contact = _make(org_a)
    response = api_a.post(
        _url(contact, "lift-restriction"),
        {"informed_at": _informed(), "informed_how": "phone"},
        format="json",
    )
    assert response.status_code == 409
    assert "not restricted" in response.json()["detail"]


@pytest.mark.obligation("DSR-8")
def test_a_statement_is_kept_in_the_contacts_history(api_a, org_a):
    contact = _make(org_a)
    response = api_a.post(
        _url(contact, "statements"),
        {"statement": "Allergic to penicillin since 2019.", "reason": "DSR-2026-9"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] and body["created_at"] and body["contact"] == contact.pk
    change = ContactChange.objects.get(pk=body["id"])
    assert change.contact == contact and change.kind == ChangeKind.SUPPLEMENTARY_STATEMENT
    assert change.statement == "Allergic to penicillin since 2019."
    assert change.reason == "DSR-2026-9" and change.actor_type == "api_key"
    assert list(contact.changes.all()) == [change]
    assert AuditEvent.objects.filter(action="contact.statement_added").count() == 1

    no_reason = api_a.post(_url(contact, "statements"), {"statement": "Also"}, format="json")
    assert no_reason.status_code == 201, no_reason.json()


@pytest.mark.obligation("DSR-8")
def test_a_statement_must_say_something(api_a, org_a):
    contact = _make(org_a)
    for body in ({}, {"statement": "  "}, {"reason": "DSR-1"}):
        response = api_a.post(_url(contact, "statements"), body, format="json")
        assert response.status_code == 400
        assert _fields(response) == {"statement"}
    assert not ContactChange.objects.filter(contact=contact).exists()


@pytest.mark.obligation("CNT-4", "DSR-8")
def test_another_organisations_contact_is_not_found(api_b, org_a):
    contact = _make(org_a)
    for action, body in (
        ("restrict", {"reason": "x"}),
        ("lift-restriction", {"informed_at": _informed(), "informed_how": "phone"}),
        ("statements", {"statement": "x"}),
    ):
        response = api_b.post(_url(contact, action), body, format="json")
        assert response.status_code == 404, action
        assert response["Content-Type"] == PROBLEM
    assert api_b.post(f"{URL}999999/restrict/", {"reason": "x"}, format="json").status_code == 404
    contact.refresh_from_db()
    assert not contact.is_restricted
    assert not ContactChange.objects.filter(contact=contact).exists()


@pytest.mark.obligation("CNT-4", "DSR-8")
def test_the_actions_need_the_write_scope(api_a_read_only, org_a):
    contact = _make(org_a)
    for action, body in (
        ("restrict", {"reason": "x"}),
        ("lift-restriction", {"informed_at": _informed(), "informed_how": "phone"}),
        ("statements", {"statement": "x"}),
    ):
        response = api_a_read_only.post(_url(contact, action), body, format="json")
        assert response.status_code == 403, action
        assert response.json()["code"] == "missing_scope"
    assert not ContactChange.objects.filter(contact=contact).exists()


@pytest.mark.obligation("CNT-4", "DSR-8", "TEN-3")
def test_a_suspended_organisation_cannot_use_the_actions(api_a, org_a):
    contact = _make(org_a)
    org_a.suspended_at = timezone.now()
    org_a.suspension_reason = "unpaid invoice"
    org_a.save()
    for action, body in (
        ("restrict", {"reason": "x"}),
        ("lift-restriction", {"informed_at": _informed(), "informed_how": "phone"}),
        ("statements", {"statement": "x"}),
    ):
        response = api_a.post(_url(contact, action), body, format="json")
        assert response.status_code == 403, action
        assert response.json()["code"] == "organisation_suspended"
    contact.refresh_from_db()
    assert not contact.is_restricted
    assert not ContactChange.objects.filter(contact=contact).exists()


def test_schema_lists_the_actions(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    restrict = paths["/api/v1/contacts/{id}/restrict/"]["post"]
    assert "RestrictIn" in restrict["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "RestrictionState" in str(restrict["responses"]["200"])
    assert "/api/v1/contacts/{id}/lift-restriction/" in paths
    statements = paths["/api/v1/contacts/{id}/statements/"]["post"]
    assert "StatementOut" in str(statements["responses"]["201"])
    assert Contact.objects.count() == 0
