"""Staff pages for contacts: list, detail, create and edit, restriction, statements, export."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from carely.audit.context import Actor, acting_as
from carely.audit.models import AccessLogEntry
from contacts.models import ChangeKind, Contact, ContactChange, SourceKind
from contacts.services import contact_create, contact_restrict
from tests.conftest import login


def _make(org, **data) -> Contact:
    values = {"first_name": "Ana", "last_name": "Novak", "email": "ana@example.si", **data}
    with acting_as(Actor.system("tests")):
        return contact_create(organisation=org, data=values, source_kind=SourceKind.STAFF)


@pytest.fixture
def ana(org_a):
    return _make(org_a, phone="041 123 456", external_id="K-1001", birth_date="1984-03-21")


@pytest.fixture
def restricted(org_a):
    contact = _make(org_a, first_name="Boris", email="boris@example.si")
    with acting_as(Actor.system("tests")):
        contact_restrict(contact=contact, reason="DSR 2025-7: accuracy disputed")
    contact.refresh_from_db()
    return contact


def _log(org, **filters):
    return AccessLogEntry.objects.for_organisation(org).filter(subject_type="contact", **filters)


def _form(contact: Contact | None = None, **overrides) -> dict[str, str]:
    data = {
        "first_name": "",
        "last_name": "",
        "birth_date": "",
        "gender": "",
        "email": "",
        "phone": "",
        "preferred_language": "",
        "external_id": "",
        "address": "",
        "relationship_status": "none",
        "relationship_started_at": "",
        "relationship_ended_at": "",
        "source": "",
        "guardian": "",
    }
    if contact is not None:
        for name in data:
            value = getattr(contact, "guardian_id" if name == "guardian" else name)
            data[name] = "" if value is None else str(value)
    data.update(overrides)
    return data


# --- persona matrix (SEC-2, TEN-1) --------------------------------------------------------------

PAGES = {
    "list": "/contacts/",
    "create": "/contacts/new/",
    "detail": "/contacts/{id}/",
    "edit": "/contacts/{id}/edit/",
    "restrict": "/contacts/{id}/restrict/",
    "lift_restriction": "/contacts/{id}/lift-restriction/",
    "statement": "/contacts/{id}/statement/",
    "export": "/contacts/{id}/export/",
}
ROLE_MAY = {
    # page: personas that get 200; the others of org A get 403
    "list": {"staff_a", "admin_a", "dpo_a"},
    "create": {"staff_a", "admin_a"},
    "detail": {"staff_a", "admin_a", "dpo_a"},
    "edit": {"staff_a", "admin_a"},
    "restrict": {"staff_a", "admin_a"},
    "lift_restriction": {"staff_a", "admin_a"},
    "statement": {"staff_a", "admin_a"},
    "export": {"admin_a", "dpo_a"},
}


def _page(name: str, ana: Contact, restricted: Contact) -> str:
    contact = restricted if name == "lift_restriction" else ana
    return PAGES[name].format(id=contact.pk)


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_sign_in(client, ana, restricted, name):
    response = client.get(_page(name, ana, restricted))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize("persona", ["staff_a", "admin_a", "dpo_a"])
@pytest.mark.parametrize("name", PAGES)
def test_each_role_opens_what_it_may_and_gets_403_otherwise(
    client, request, ana, restricted, persona, name
):
    login(client, request.getfixturevalue(persona))
    response = client.get(_page(name, ana, restricted))
    expected = 200 if persona in ROLE_MAY[name] else 403
    assert response.status_code == expected, (persona, name)


@pytest.mark.obligation("TEN-1")
@pytest.mark.parametrize("name", [n for n in PAGES if "{id}" in PAGES[n]])
def test_another_organisations_contact_is_404(client, staff_b, admin_b, ana, restricted, name):
    path = _page(name, ana, restricted)
    # Staff of B may not export at all (403 before any lookup); everything else is not found.
    for person, expected in ((staff_b, 403 if name == "export" else 404), (admin_b, 404)):
        login(client, person)
        assert client.get(path).status_code == expected, (person, name)
        assert client.post(path, {}).status_code == expected, (person, name)


@pytest.mark.obligation("TEN-1")
def test_list_never_shows_another_organisations_contacts(client, staff_b, ana, org_b):
    _make(org_b, first_name="Cene", email="cene@example.si")
    login(client, staff_b)
    body = client.get("/contacts/").content.decode()
    assert "Cene" in body and "ana@example.si" not in body
    assert client.get("/contacts/?q=ana@example.si").context["contacts"] == []


@pytest.mark.obligation("SEC-2")
def test_dpo_cannot_write_through_post_either(client, dpo_a, ana):
    login(client, dpo_a)
    assert client.post("/contacts/new/", _form(first_name="X", email="x@e.si")).status_code == 403
    assert client.post(f"/contacts/{ana.pk}/restrict/", {"reason": "x"}).status_code == 403
    assert client.post(f"/contacts/{ana.pk}/statement/", {"statement": "x"}).status_code == 403
    assert not Contact.objects.exclude(pk=ana.pk).exists()
    ana.refresh_from_db()
    assert not ana.is_restricted
    assert not ContactChange.objects.filter(contact=ana).exists()


# --- list (CNT-3, CNT-4) ------------------------------------------------------------------------


@pytest.mark.obligation("CNT-3")
def test_list_shows_contacts_links_to_detail_and_logs_each_row(client, staff_a, org_a, ana):
    other = _make(org_a, first_name="Cene", last_name="Kralj", email="cene@example.si")
    login(client, staff_a)
    response = client.get("/contacts/")
    body = response.content.decode()
    assert f'href="/contacts/{ana.pk}/"' in body and f'href="/contacts/{other.pk}/"' in body
    assert "Ana Novak" in body and "+38641123456" in body and "K-1001" in body
    entries = _log(org_a, action="view")
    assert {e.subject_id for e in entries} == {str(ana.pk), str(other.pk)}
    entry = entries.first()
    assert entry.actor_id == str(staff_a.pk) and entry.purpose == "routine"
    assert {"first_name", "last_name", "email", "phone", "external_id"} <= set(entry.what)


@pytest.mark.obligation("CNT-3")
@pytest.mark.parametrize(
    "query", ["ana@example.si", "ANA@Example.si", "041 123 456", "+386 41 123 456", "K-1001"]
)
def test_search_is_exact_through_the_blind_index(client, staff_a, org_a, ana, query):
    _make(org_a, first_name="Cene", email="cene@example.si", phone="040 999 888")
    login(client, staff_a)
    response = client.get("/contacts/", {"q": query})
    assert [c.pk for c in response.context["contacts"]] == [ana.pk]
    assert _log(org_a).count() == 1


def test_name_search_finds_nothing_and_says_why(client, staff_a, ana):
    login(client, staff_a)
    response = client.get("/contacts/", {"q": "Novak"})
    body = response.content.decode()
    assert response.context["contacts"] == []
    assert "Names cannot be searched" in body
    assert "cannot be searched" in client.get("/contacts/").content.decode()  # the hint


def test_blank_channels_are_not_matched_by_a_search(client, staff_a, org_a):
    _make(org_a, first_name="Nik", email="", phone="041 555 666")
    login(client, staff_a)
    assert client.get("/contacts/", {"q": "someone@else.si"}).context["contacts"] == []


def test_relationship_filter(client, staff_a, org_a, ana):
    active = _make(org_a, first_name="Eva", email="eva@example.si", relationship_status="active")
    login(client, staff_a)
    response = client.get("/contacts/", {"relationship_status": "active"})
    assert [c.pk for c in response.context["contacts"]] == [active.pk]
    bad = client.get("/contacts/", {"relationship_status": "married"})
    assert bad.context["contacts"] == []


@pytest.mark.obligation("CNT-4")
def test_restricted_contacts_are_marked_in_the_list(client, staff_a, restricted):
    login(client, staff_a)
    body = client.get("/contacts/").content.decode()
    assert "<strong>Restricted</strong>" in body


def test_list_paginates_fifty_a_page(client, staff_a, org_a):
    for n in range(55):
        _make(org_a, first_name=f"P{n}", email=f"p{n}@example.si")
    login(client, staff_a)
    first = client.get("/contacts/")
    assert len(first.context["contacts"]) == 50
    assert "Page 1 of 2" in first.content.decode()
    second = client.get("/contacts/", {"page": 2})
    assert len(second.context["contacts"]) == 5
    assert _log(org_a).count() == 55


@pytest.mark.obligation("CNT-3")
def test_list_query_count_is_constant(client, staff_a, org_a, django_assert_num_queries):
    for n in range(5):
        _make(org_a, first_name=f"P{n}", email=f"p{n}@example.si")
    login(client, staff_a)
    client.get("/contacts/")  # warm the session and caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as five:
        assert client.get("/contacts/").status_code == 200
    for n in range(5, 30):
        _make(org_a, first_name=f"P{n}", email=f"p{n}@example.si")
    with django_assert_num_queries(len(five.captured_queries)):
        response = client.get("/contacts/")
    assert len(response.context["contacts"]) == 30


# --- detail (CNT-3, CNT-4, CNT-6, DSR-8) --------------------------------------------------------


@pytest.mark.obligation("CNT-3")
def test_detail_shows_every_field_and_logs_one_view(client, dpo_a, org_a, ana):
    login(client, dpo_a)
    response = client.get(f"/contacts/{ana.pk}/")
    body = response.content.decode()
    for text in ("Ana", "Novak", "ana@example.si", "+38641123456", "K-1001", "21. 3. 1984"):
        assert text in body
    (entry,) = _log(org_a, subject_id=str(ana.pk))
    assert entry.action == "view" and entry.actor_id == str(dpo_a.pk)
    assert {"first_name", "birth_date", "email", "phone", "address", "history"} <= set(entry.what)
    assert f"/contacts/{ana.pk}/edit/" not in body  # the DPO reads, does not edit
    assert f"/contacts/{ana.pk}/export/" in body


@pytest.mark.obligation("CNT-4")
def test_restriction_banner_with_reason_and_date(client, staff_a, restricted):
    login(client, staff_a)
    body = client.get(f"/contacts/{restricted.pk}/").content.decode()
    assert 'class="notice notice--warning"' in body
    assert "This contact is restricted" in body
    assert "DSR 2025-7: accuracy disputed" in body
    assert timezone.localtime(restricted.restricted_at).strftime("%Y") in body
    assert f"/contacts/{restricted.pk}/lift-restriction/" in body
    assert f'href="/contacts/{restricted.pk}/edit/"' not in body


@pytest.mark.obligation("CNT-6")
def test_minor_is_flagged_with_a_link_to_the_guardian(client, staff_a, org_a, ana):
    today = timezone.localdate()
    minor = _make(
        org_a,
        first_name="Tina",
        email="tina@example.si",
        birth_date=today.replace(year=today.year - 15).isoformat(),
        guardian=ana.pk,
    )
    login(client, staff_a)
    body = client.get(f"/contacts/{minor.pk}/").content.decode()
    assert "Minor (13 to 17)" in body
    assert "guardian" in body.lower() and f'href="/contacts/{ana.pk}/"' in body


# --- create and edit (CNT-1, CNT-6, DSR-8) ------------------------------------------------------


@pytest.mark.obligation("CNT-1")
def test_create_a_contact(client, staff_a, org_a):
    login(client, staff_a)
    response = client.post(
        "/contacts/new/", _form(first_name="Maja", phone="031 222 333", external_id="K-7")
    )
    contact = Contact.objects.for_organisation(org_a).get()
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.phone == "+38631222333" and contact.source_kind == SourceKind.STAFF
    assert "The contact was added." in client.get(response["Location"]).content.decode()


@pytest.mark.obligation("CNT-1")
@pytest.mark.obligation("CNT-6")
def test_create_with_errors_shows_each_fields_message_and_keeps_what_was_typed(client, staff_a):
    login(client, staff_a)
    today = timezone.localdate()
    child = today.replace(year=today.year - 8).isoformat()
    response = client.post(
        "/contacts/new/",
        _form(first_name="Luka", phone="12", birth_date=child, preferred_language="Slovene!"),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "Contacts under 13 cannot be registered" in errors["birth_date"][0]
    assert errors["phone"] and errors["preferred_language"]
    body = response.content.decode()
    assert "Contacts under 13 cannot be registered" in body
    assert 'value="Luka"' in body and 'value="12"' in body and f'value="{child}"' in body
    assert body.count('class="field-error"') >= 3
    assert not Contact.objects.exists()


@pytest.mark.obligation("CNT-1")
def test_missing_channel_is_shown_on_both_channel_fields(client, staff_a):
    login(client, staff_a)
    response = client.post("/contacts/new/", _form(first_name="Luka"))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["email"] == ["Give an e-mail address or a phone number."]
    assert errors["phone"] == ["Give an e-mail address or a phone number."]


@pytest.mark.obligation("DSR-8")
def test_edit_records_history_with_reason(client, staff_a, org_a, ana):
    login(client, staff_a)
    response = client.post(
        f"/contacts/{ana.pk}/edit/",
        _form(ana, email="ana.novak@example.si", reason="The patient gave a new address"),
    )
    assert response.status_code == 302
    change = ContactChange.objects.for_organisation(org_a).get(kind=ChangeKind.RECTIFICATION)
    assert change.reason == "The patient gave a new address"
    assert change.actor_id == str(staff_a.pk)
    assert change.changed() == {
        "email": {"before": "ana@example.si", "after": "ana.novak@example.si"}
    }
    body = client.get(f"/contacts/{ana.pk}/").content.decode()
    assert "The patient gave a new address" in body
    assert "ana@example.si" in body and "ana.novak@example.si" in body  # before → after
    assert staff_a.full_name in body or staff_a.email in body


@pytest.mark.obligation("DSR-8")
def test_edit_needs_a_reason_and_still_shows_other_errors(client, staff_a, ana):
    login(client, staff_a)
    response = client.post(f"/contacts/{ana.pk}/edit/", _form(ana, phone="abc", reason=""))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "Say why the record is changed" in errors["reason"][0]
    assert errors["phone"]
    assert 'value="abc"' in response.content.decode()
    ana.refresh_from_db()
    assert ana.phone == "+38641123456"


def test_edit_without_changes_writes_no_history(client, staff_a, org_a, ana):
    login(client, staff_a)
    response = client.post(f"/contacts/{ana.pk}/edit/", _form(ana, reason="checking"))
    assert response.status_code == 302
    assert not ContactChange.objects.for_organisation(org_a).exists()


def test_edit_page_logs_a_view(client, staff_a, org_a, ana):
    login(client, staff_a)
    client.get(f"/contacts/{ana.pk}/edit/")
    assert _log(org_a, subject_id=str(ana.pk), action="view").count() == 1


# --- restriction (CNT-4) ------------------------------------------------------------------------


@pytest.mark.obligation("CNT-4")
def test_restrict_needs_a_reason_and_then_edit_is_refused(client, staff_a, ana):
    login(client, staff_a)
    empty = client.post(f"/contacts/{ana.pk}/restrict/", {"reason": " "})
    assert empty.status_code == 400
    assert "Say why the contact is restricted." in empty.content.decode()
    response = client.post(f"/contacts/{ana.pk}/restrict/", {"reason": "DSR 12"})
    assert response.status_code == 302
    ana.refresh_from_db()
    assert ana.is_restricted and ana.restriction_reason == "DSR 12"
    edit = client.get(f"/contacts/{ana.pk}/edit/")
    assert edit.status_code == 409
    assert "restricted and cannot be changed" in edit.content.decode()
    post = client.post(f"/contacts/{ana.pk}/edit/", _form(ana, first_name="X", reason="r"))
    assert post.status_code == 409
    ana.refresh_from_db()
    assert ana.first_name == "Ana"


def _informed(moment, how: str) -> dict[str, str]:
    return {
        "informed_at_0": moment.strftime("%Y-%m-%d"),
        "informed_at_1": moment.strftime("%H:%M"),
        "informed_how": how,
    }


@pytest.mark.obligation("CNT-4")
def test_lifting_needs_when_and_how_the_person_was_informed(client, staff_a, restricted):
    login(client, staff_a)
    path = f"/contacts/{restricted.pk}/lift-restriction/"
    response = client.post(path, {"informed_at_0": "", "informed_at_1": "", "informed_how": ""})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["informed_at"] and errors["informed_how"]
    restricted.refresh_from_db()
    assert restricted.is_restricted
    future = timezone.localtime() + dt.timedelta(days=2)
    response = client.post(path, _informed(future, "by letter"))
    assert response.status_code == 400
    assert "in the future" in response.content.decode()
    informed = timezone.localtime() - dt.timedelta(hours=1)
    response = client.post(path, _informed(informed, "by letter"))
    assert response.status_code == 302
    restricted.refresh_from_db()
    assert not restricted.is_restricted
    assert restricted.restriction_lift_informed_how == "by letter"
    body = client.get(f"/contacts/{restricted.pk}/").content.decode()
    assert "Restriction lifted" in body and "by letter" in body
    assert "This contact is restricted" not in body


# --- supplementary statements (DSR-8) -----------------------------------------------------------


@pytest.mark.obligation("DSR-8")
def test_supplementary_statement_is_added_and_shown(client, staff_a, ana):
    login(client, staff_a)
    empty = client.post(f"/contacts/{ana.pk}/statement/", {"statement": ""})
    assert empty.status_code == 400
    assert "Write the statement that completes the record." in empty.content.decode()
    response = client.post(
        f"/contacts/{ana.pk}/statement/", {"statement": "Also known as Ani at school."}
    )
    assert response.status_code == 302
    body = client.get(f"/contacts/{ana.pk}/").content.decode()
    assert "Also known as Ani at school." in body


# --- export (CNT-3, CNT-4) ----------------------------------------------------------------------


@pytest.mark.obligation("CNT-3")
def test_export_asks_for_a_purpose_then_downloads_and_logs_it(client, admin_a, org_a, ana):
    login(client, admin_a)
    page = client.get(f"/contacts/{ana.pk}/export/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="purpose"' in body and 'value="dsr"' in body and 'value="routine"' not in body
    assert not _log(org_a, action="export").exists()
    missing = client.post(f"/contacts/{ana.pk}/export/", {})
    assert missing.status_code == 400
    assert "Choose the purpose of the export." in missing.content.decode()
    response = client.post(f"/contacts/{ana.pk}/export/", {"purpose": "patient_request"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    document = json.loads(response.content)
    (row,) = document["models"]["contacts.Contact"]
    assert row["email"] == "ana@example.si" and row["id"] == ana.pk
    (entry,) = _log(org_a, action="export")
    assert entry.purpose == "patient_request" and entry.subject_id == str(ana.pk)
    assert "email" in entry.what and entry.actor_id == str(admin_a.pk)


@pytest.mark.obligation("CNT-4")
@pytest.mark.parametrize("purpose", ["care", "patient_request", "correction"])
def test_restricted_contact_export_is_refused_for_other_purposes(
    client, dpo_a, org_a, restricted, purpose
):
    login(client, dpo_a)
    response = client.post(f"/contacts/{restricted.pk}/export/", {"purpose": purpose})
    assert response.status_code == 400
    assert "may be exported only to answer a data-subject request" in response.content.decode()
    assert not _log(org_a, action="export").exists()


@pytest.mark.obligation("CNT-4")
@pytest.mark.parametrize("purpose", ["dsr", "legal"])
def test_restricted_contact_may_be_exported_for_a_dsr_or_legal_claim(
    client, dpo_a, org_a, restricted, purpose
):
    login(client, dpo_a)
    response = client.post(f"/contacts/{restricted.pk}/export/", {"purpose": purpose})
    assert response.status_code == 200
    assert json.loads(response.content)["models"]["contacts.Contact"][0]["id"] == restricted.pk
    assert _log(org_a, action="export").get().purpose == purpose


def test_staff_cannot_export(client, staff_a, org_a, ana):
    login(client, staff_a)
    assert client.post(f"/contacts/{ana.pk}/export/", {"purpose": "dsr"}).status_code == 403
    assert not _log(org_a, action="export").exists()


def test_detail_includes_the_files_panel_when_the_files_app_provides_it(
    client, staff_a, org_a, ana
):
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    try:
        get_template("files/contact_files_panel.html")
    except TemplateDoesNotExist:
        pytest.skip("the files app has no contact panel here")
    login(client, staff_a)
    body = client.get(f"/contacts/{ana.pk}/").content.decode()
    assert 'id="files"' in body
    assert "files" in _log(org_a, subject_id=str(ana.pk)).get().what


@pytest.mark.obligation("CNT-3")
def test_detail_links_to_the_contacts_consent_and_messages(client, staff_a, org_a):
    from contacts.models import Contact

    contact = Contact.objects.create(organisation=org_a, first_name="Ana", email="ana@primer.si")
    login(client, staff_a)
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert f'href="/contacts/{contact.pk}/consents/"' in page
    assert f'href="/contacts/{contact.pk}/messages/"' in page
