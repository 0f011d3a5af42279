"""Custom contact tags: the clinic's labels on contacts, set through the service, the API and
the staff pages; erased and exported with the contact; the filter audiences build on."""

from __future__ import annotations

import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carely.audit.context import Actor, acting_as
from carely.audit.models import AuditEvent
from carely.privacy.registry import Subject, registry
from contacts.models import ChangeKind, Contact, ContactChange, ContactTag, SourceKind, Tag
from contacts.selectors import contact_tag_names, contacts_with_tags, tag_filter_q
from contacts.services import (
    ContactRestricted,
    TagInvalid,
    contact_create,
    contact_restrict,
    contact_tags_set,
    tag_delete,
    tag_rename,
)

pytestmark = pytest.mark.django_db


def _make(org, first_name="Ana", **data) -> Contact:
    values = {"first_name": first_name, "email": f"{first_name.lower()}@example.si", **data}
    with acting_as(Actor.system("tests")):
        return contact_create(organisation=org, data=values, source_kind=SourceKind.STAFF)


def _set(contact, *names, reason=""):
    with acting_as(Actor.system("tests")):
        return contact_tags_set(contact=contact, names=list(names), reason=reason)


def _names(contact) -> list[str]:
    return sorted(ContactTag.objects.filter(contact=contact).values_list("name", flat=True))


@pytest.fixture
def ana(org_a):
    return _make(org_a)


# --- the service --------------------------------------------------------------------------


@pytest.mark.obligation("DSR-8")
def test_setting_tags_creates_them_and_records_one_history_entry(ana, org_a):
    result = _set(ana, "diabetes-check", "  newsletter ", reason="asked at the desk")
    assert result == {"before": [], "after": ["diabetes-check", "newsletter"]}
    assert _names(ana) == ["diabetes-check", "newsletter"]
    assert sorted(Tag.objects.for_organisation(org_a).values_list("name", flat=True)) == [
        "diabetes-check",
        "newsletter",
    ]
    (change,) = ContactChange.objects.filter(contact=ana)
    assert change.kind == ChangeKind.RECTIFICATION and change.reason == "asked at the desk"
    assert change.changed() == {"tags": {"before": [], "after": ["diabetes-check", "newsletter"]}}
    event = AuditEvent.objects.filter(action="contact.tags_set").get()
    assert "diabetes" not in json.dumps(event.details)  # ids only in the audit log
    assert len(event.details["added_tag_ids"]) == 2


def test_setting_replaces_the_set_and_reuses_tags_whatever_the_case(ana, org_a):
    _set(ana, "Diabetes-Check", "newsletter")
    result = _set(ana, "diabetes-check", "vip")
    # The existing spelling wins; "newsletter" is off, "vip" on.
    assert result == {
        "before": ["Diabetes-Check", "newsletter"],
        "after": ["Diabetes-Check", "vip"],
    }
    assert _names(ana) == ["Diabetes-Check", "vip"]
    assert Tag.objects.for_organisation(org_a).count() == 3  # a tag outlives its last contact
    assert _set(ana, "vip", "DIABETES-CHECK") == {}  # no change, nothing written
    assert ContactChange.objects.filter(contact=ana).count() == 2


def test_case_insensitive_beyond_ascii(ana, org_a):
    _set(ana, "Čakalna vrsta")
    other = _make(org_a, "Boris")
    _set(other, "čakalna VRSTA")
    assert Tag.objects.for_organisation(org_a).count() == 1
    assert _names(other) == ["Čakalna vrsta"]


def test_clearing_all_tags(ana):
    _set(ana, "a", "b")
    assert _set(ana) == {"before": ["a", "b"], "after": []}
    assert _names(ana) == []


def test_validation_names_each_bad_tag(ana):
    with pytest.raises(TagInvalid) as caught:
        _set(ana, "ok", "   ", "a,b", "x" * 41, 7)
    messages = caught.value.errors["tags"]
    assert messages == [
        "A tag is empty: give it a name or remove it.",
        "Tag “a,b” contains a comma; commas separate tags, so write it as two tags or choose "
        "a name without one.",
        f"Tag “{'x' * 41}” is too long: at most 40 characters, this has 41.",
        "Tag 7 is not text; send each tag as a string.",
    ]
    assert _names(ana) == [] and not Tag.objects.exists()  # nothing half-done


def test_forty_characters_is_allowed_and_inner_spaces_collapse(ana):
    _set(ana, "x" * 40, "new   patient", "ﬃ" * 40)  # the ligature case-folds to "ffi"
    assert _names(ana) == sorted(["ﬃ" * 40, "new patient", "x" * 40])


@pytest.mark.obligation("CNT-4")
def test_a_restricted_contact_cannot_be_tagged(ana):
    _set(ana, "vip")
    with acting_as(Actor.system("tests")):
        contact_restrict(contact=ana, reason="DSR 7: disputed")
    with pytest.raises(ContactRestricted):
        _set(ana, "newsletter")
    assert _names(ana) == ["vip"]


@pytest.mark.obligation("TEN-1")
def test_tags_are_per_organisation(ana, org_a, org_b):
    _set(ana, "vip")
    boris = _make(org_b, "Boris")
    _set(boris, "VIP")
    tag_a = Tag.objects.for_organisation(org_a).get()
    tag_b = Tag.objects.for_organisation(org_b).get()
    assert tag_a.pk != tag_b.pk and tag_b.name == "VIP"
    assert ContactTag.objects.get(contact=boris).tag_id == tag_b.pk
    assert ContactTag.objects.get(contact=boris).organisation_id == org_b.pk


def test_rename_updates_every_contact_and_refuses_a_taken_name(ana, org_a):
    _set(ana, "diabetes", "vip")
    tag = Tag.objects.for_organisation(org_a).get(key="diabetes")
    with acting_as(Actor.system("tests")):
        tag_rename(tag=tag, name="Diabetes check")
        with pytest.raises(TagInvalid) as caught:
            tag_rename(tag=tag, name="VIP")
        with pytest.raises(TagInvalid) as bad:
            tag_rename(tag=tag, name="a,b")
    assert caught.value.errors == {
        "name": [
            "There is already a tag “VIP”. Choose another name, or delete one of the two tags."
        ]
    }
    assert "comma" in bad.value.errors["name"][0]
    assert _names(ana) == ["Diabetes check", "vip"]
    ana.refresh_from_db()
    assert contact_tag_names(ana) == ["Diabetes check", "vip"]


@pytest.mark.obligation("DSR-8")
def test_deleting_a_tag_takes_it_off_contacts_with_history(ana, org_a):
    boris = _make(org_a, "Boris")
    _set(ana, "flu-2026", "vip")
    _set(boris, "flu-2026")
    tag = Tag.objects.for_organisation(org_a).get(key="flu-2026")
    with acting_as(Actor.system("tests")):
        assert tag_delete(tag=tag) == 2
    assert _names(ana) == ["vip"] and _names(boris) == []
    last = ContactChange.objects.filter(contact=ana).last()
    assert last.changed() == {"tags": {"before": ["flu-2026", "vip"], "after": ["vip"]}}
    assert "flu-2026" in last.reason
    assert not Tag.objects.filter(pk=tag.pk).exists()


# --- the selector audiences use -------------------------------------------------------------


def test_tag_filter_any_of_and_all_of(org_a, org_b):
    ana, boris, cene = (_make(org_a, n) for n in ("Ana", "Boris", "Cene"))
    _set(ana, "diabetes", "vip")
    _set(boris, "diabetes")
    _set(cene, "newsletter")
    other = _make(org_b, "Dora")
    _set(other, "diabetes", "vip")

    def ids(**kwargs):
        return set(contacts_with_tags(org_a, **kwargs).values_list("pk", flat=True))

    assert ids(any_of=["DIABETES"]) == {ana.pk, boris.pk}
    assert ids(any_of=["vip", "newsletter"]) == {ana.pk, cene.pk}
    assert ids(all_of=["diabetes", "vip"]) == {ana.pk}
    assert ids(any_of=["diabetes"], all_of=["vip"]) == {ana.pk}
    assert ids(any_of=["no-such-tag"]) == set()
    assert ids(all_of=["diabetes", "no-such-tag"]) == set()


def test_tag_filter_is_one_lazy_query_usable_as_a_subquery(org_a):
    ana = _make(org_a)
    _set(ana, "vip")
    with CaptureQueriesContext(connection) as queries:
        q = tag_filter_q(org_a, any_of=["vip"], all_of=["vip"])
        audience = Contact.objects.filter(pk__in=Contact.objects.filter(q).values("pk"))
    assert len(queries) == 0  # building it runs nothing
    with CaptureQueriesContext(connection) as queries:
        assert list(audience.values_list("pk", flat=True)) == [ana.pk]
    assert len(queries) == 1


# --- privacy: erasure and access ------------------------------------------------------------


@pytest.mark.obligation("DSR-9")
def test_erasing_the_contact_removes_its_tags_and_keeps_the_vocabulary(ana, org_a):
    boris = _make(org_a, "Boris")
    _set(ana, "diabetes-check")
    _set(boris, "diabetes-check")
    report = registry.erase(Subject("contact", org_a.pk, ana.pk), dry_run=False)
    assert not ContactTag.objects.filter(contact_id=ana.pk).exists()
    assert _names(boris) == ["diabetes-check"]  # another patient's tag untouched
    assert Tag.objects.for_organisation(org_a).filter(key="diabetes-check").exists()
    assert "contacts.ContactTag" in json.dumps(report.as_dict())


@pytest.mark.obligation("DSR-6")
def test_access_export_names_the_tags(ana, org_a):
    _set(ana, "diabetes-check")
    other = _make(org_a, "Boris")
    _set(other, "vip")
    found = registry.collect(Subject("contact", org_a.pk, ana.pk))
    (row,) = found["contacts.ContactTag"]
    assert row["tag"] == "diabetes-check" and row["contact_id"] == ana.pk
    stream = io.StringIO()
    registry.export(Subject("contact", org_a.pk, ana.pk), stream)
    assert "diabetes-check" in stream.getvalue() and "vip" not in stream.getvalue()


@pytest.mark.obligation("DSR-7")
def test_portability_leaves_out_tags_the_clinic_put_on(ana, org_a):
    _set(ana, "diabetes-check")
    stream = io.StringIO()
    registry.export(Subject("contact", org_a.pk, ana.pk), stream, portability=True)
    assert "diabetes-check" not in stream.getvalue()


# --- the API --------------------------------------------------------------------------------

URL = "/api/v1/contacts/"
TAGS = "/api/v1/tags/"


def test_api_create_with_tags_and_patch_replaces_them(api_a, org_a):
    created = api_a.post(
        URL,
        {"first_name": "Ana", "email": "ana@example.si", "tags": ["vip", "flu-2026"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["tags"] == ["flu-2026", "vip"]
    contact = Contact.objects.get(pk=body["id"])
    # The first tags of a new contact are part of creating it, not a change to its history.
    assert not ContactChange.objects.filter(contact=contact).exists()

    patched = api_a.patch(f"{URL}{contact.pk}/", {"tags": ["VIP", "diabetes-check"]}, format="json")
    assert patched.status_code == 200
    assert patched.json()["tags"] == ["diabetes-check", "vip"]
    assert api_a.get(f"{URL}{contact.pk}/").json()["tags"] == ["diabetes-check", "vip"]

    untouched = api_a.patch(f"{URL}{contact.pk}/", {"first_name": "Ana Marija"}, format="json")
    assert untouched.json()["tags"] == ["diabetes-check", "vip"]  # no "tags": left as they are
    cleared = api_a.patch(f"{URL}{contact.pk}/", {"tags": []}, format="json")
    assert cleared.json()["tags"] == []


def test_api_tag_errors_name_the_tag_and_change_nothing(api_a, org_a):
    response = api_a.post(
        URL,
        {"first_name": "Ana", "email": "ana@example.si", "tags": ["ok", "a,b"]},
        format="json",
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "tags" and "“a,b” contains a comma" in error["message"]
    assert not Contact.objects.exists() and not Tag.objects.exists()  # no half-made contact

    ana = _make(org_a)
    _set(ana, "vip")
    response = api_a.patch(
        f"{URL}{ana.pk}/", {"first_name": "Ana Marija", "tags": ["x" * 41]}, format="json"
    )
    assert response.status_code == 400
    assert "at most 40 characters, this has 41" in response.json()["errors"][0]["message"]
    ana.refresh_from_db()
    assert ana.first_name == "Ana" and _names(ana) == ["vip"]  # the whole request or nothing


@pytest.mark.obligation("CNT-4")
def test_api_tagging_a_restricted_contact_is_a_conflict(api_a, org_a):
    ana = _make(org_a)
    with acting_as(Actor.system("tests")):
        contact_restrict(contact=ana, reason="DSR 7")
    response = api_a.patch(f"{URL}{ana.pk}/", {"tags": ["vip"]}, format="json")
    assert response.status_code == 409
    assert _names(ana) == []


def test_api_list_filters_by_tag(api_a, org_a):
    ana, boris, cene = (_make(org_a, n) for n in ("Ana", "Boris", "Cene"))
    _set(ana, "vip")
    _set(boris, "diabetes")

    def ids(query):
        return {c["id"] for c in api_a.get(URL + query).json()["results"]}

    assert ids("?tag=VIP") == {ana.pk}
    assert ids("?tag=vip&tag=diabetes") == {ana.pk, boris.pk}
    assert ids("?tag=nobody-has-it") == set()
    assert ids("") == {ana.pk, boris.pk, cene.pk}


@pytest.mark.obligation("TEN-1")
def test_api_tags_list_counts_and_other_tenants_are_404(api_a, api_b, org_a, org_b):
    ana, boris = _make(org_a), _make(org_a, "Boris")
    _set(ana, "vip", "diabetes")
    _set(boris, "vip")
    dora = _make(org_b, "Dora")
    _set(dora, "secret-b")
    listed = api_a.get(TAGS)
    assert listed.status_code == 200
    assert [(t["name"], t["contact_count"]) for t in listed.json()["results"]] == [
        ("diabetes", 2 - 1),
        ("vip", 2),
    ]
    tag_b = Tag.objects.for_organisation(org_b).get()
    assert api_a.get(f"{TAGS}{tag_b.pk}/").status_code == 404
    assert api_b.get(f"{TAGS}{tag_b.pk}/").json()["contact_count"] == 1
    # Naming another organisation's tag attaches this organisation's own tag of that name.
    api_a.patch(f"{URL}{ana.pk}/", {"tags": ["secret-b"]}, format="json")
    (link,) = ContactTag.objects.filter(contact=ana)
    assert link.tag_id != tag_b.pk and link.tag.organisation_id == org_a.pk


def test_api_tags_need_the_contacts_read_scope(org_a):
    from tests.contacts.conftest import _client

    assert _client(org_a, scopes=["files:read"]).get(TAGS).status_code == 403
    assert _client(org_a, scopes=["contacts:read"]).get(TAGS).status_code == 200


def test_api_list_loads_tags_in_one_query_for_the_page(api_a, org_a, django_assert_num_queries):
    api_a.get(URL)  # the first request of the minute also records the key's last use
    for i in range(3):
        contact = _make(org_a, f"A{i}")
        _set(contact, "vip", f"t{i}")
    with django_assert_num_queries(4):  # the key, the page, the page's tags, the access log
        results = api_a.get(URL).json()["results"]
    assert sorted(len(c["tags"]) for c in results) == [2, 2, 2]
    for i in range(20):
        contact = _make(org_a, f"B{i}")
        _set(contact, "vip", "flu", f"u{i}")
    with django_assert_num_queries(4):
        results = api_a.get(URL).json()["results"]
    assert len(results) == 23 and all("vip" in c["tags"] for c in results)


# --- the staff pages ------------------------------------------------------------------------


def _page_form(**overrides) -> dict[str, str]:
    data = {
        "first_name": "Ana",
        "last_name": "Novak",
        "birth_date": "",
        "gender": "",
        "email": "ana@example.si",
        "phone": "",
        "preferred_language": "",
        "external_id": "",
        "address": "",
        "relationship_status": "none",
        "relationship_started_at": "",
        "relationship_ended_at": "",
        "source": "",
        "guardian": "",
        "tags": "",
    }
    data.update(overrides)
    return data


def test_page_create_with_tags_then_edit_them(client, staff_a, org_a):
    from tests.conftest import login

    login(client, staff_a)
    response = client.post("/contacts/new/", _page_form(tags="diabetes-check, newsletter,"))
    assert response.status_code == 302
    contact = Contact.objects.for_organisation(org_a).get()
    assert _names(contact) == ["diabetes-check", "newsletter"]

    edit = client.get(f"/contacts/{contact.pk}/edit/").content.decode()
    assert 'value="diabetes-check, newsletter"' in edit
    response = client.post(
        f"/contacts/{contact.pk}/edit/",
        _page_form(tags="diabetes-check, VIP", reason="asked at the desk"),
    )
    assert response.status_code == 302
    assert _names(contact) == ["VIP", "diabetes-check"]
    detail = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert 'class="tag-chips"' in detail and ">VIP</a>" in detail
    # The history shows the tags as a list a person reads, with the reason.
    assert "diabetes-check, newsletter" in detail and "diabetes-check, VIP" in detail
    assert "asked at the desk" in detail


def test_page_shows_the_tag_error_and_creates_nothing(client, staff_a, org_a):
    from tests.conftest import login

    login(client, staff_a)
    response = client.post("/contacts/new/", _page_form(tags="ok, " + "x" * 41))
    assert response.status_code == 400
    (message,) = response.context["form"].errors["tags"]
    assert "at most 40 characters, this has 41" in message
    assert not Contact.objects.exists() and not Tag.objects.exists()
    # An invalid form elsewhere still reports the tag problem in the same round.
    response = client.post("/contacts/new/", _page_form(email="", tags="x" * 41))
    assert response.status_code == 400
    assert "tags" in response.context["form"].errors


def test_page_list_filters_by_tag_and_loads_tags_once(
    client, staff_a, org_a, django_assert_num_queries
):
    from tests.conftest import login

    ana, boris = _make(org_a), _make(org_a, "Boris")
    _set(ana, "vip", "flu")
    _set(boris, "flu")
    login(client, staff_a)
    client.get("/contacts/")  # warm the session and caches
    with CaptureQueriesContext(connection) as two:
        response = client.get("/contacts/?tag=VIP")
    assert [c.pk for c in response.context["contacts"]] == [ana.pk]
    assert ">vip</a>" in response.content.decode()
    for i in range(20):
        _set(_make(org_a, f"P{i}"), "vip", f"t{i}")
    with django_assert_num_queries(len(two.captured_queries)):
        response = client.get("/contacts/?tag=vip")
    assert len(response.context["contacts"]) == 21
    assert "flu" in client.get("/contacts/?tag=flu").content.decode()
