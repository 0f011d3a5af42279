"""Staff consent pages for one contact (CON-1, CON-6, CON-7, DSR-11, CNT-3): the history with
its access-log row, recording, objections, the DPO's grounds, receipts; the persona matrix."""

from __future__ import annotations

import json

import pytest

from carely.audit.context import Actor, acting_as
from carely.audit.models import AccessLogEntry
from consent.models import ConsentEntry, Objection, SuppressionEntry, Wording
from consent.services import objection_record
from contacts.services import contact_restrict
from tests.conftest import login
from tests.consent.conftest import record

pytestmark = pytest.mark.django_db

PAGES = {
    "history": "/contacts/{id}/consents/",
    "record": "/contacts/{id}/consents/record/",
    "objection": "/contacts/{id}/consents/objection/",
    "receipt_json": "/contacts/{id}/consents/receipt.json",
    "receipt_pdf": "/contacts/{id}/consents/receipt.pdf",
}
# page: roles of org A that get 200 (the others get 403)
ROLE_MAY = {
    "history": {"staff", "admin", "dpo"},
    "record": {"staff", "admin"},
    "objection": {"staff", "admin"},
    "receipt_json": {"staff", "admin", "dpo"},
    "receipt_pdf": {"staff", "admin", "dpo"},
}


def _log(org, **filters):
    return AccessLogEntry.objects.for_organisation(org).filter(subject_type="contact", **filters)


@pytest.fixture
def people(staff_a, admin_a, dpo_a, staff_b):
    return {"staff": staff_a, "admin": admin_a, "dpo": dpo_a, "other_org": staff_b}


@pytest.mark.obligation("SEC-2", "TEN-1")
# Not "page": that is pytest-playwright's fixture, and the name would make this a browser test.
@pytest.mark.parametrize("page_name", sorted(PAGES))
def test_persona_matrix(client, ana, people, page_name):
    url = PAGES[page_name].format(id=ana.pk)
    assert client.get(url).status_code == 302  # anonymous: to the login page
    for name, user in people.items():
        login(client, user)
        expected = 404 if name == "other_org" else 200 if name in ROLE_MAY[page_name] else 403
        assert client.get(url).status_code == expected, (name, page_name)
        client.logout()


@pytest.mark.obligation("CON-1", "CNT-3")
def test_history_shows_ledger_state_and_objections_and_logs_the_view(client, ana, staff_a):
    with acting_as(Actor.user(staff_a.pk)):
        record(ana, note="Paper form at reception")
    record(ana, "withdrawn", channel="sms", source="unsubscribe_link")
    objection_record(contact=ana, kind="legitimate_interest", source="staff")
    login(client, staff_a)
    response = client.get(f"/contacts/{ana.pk}/consents/")
    assert response.status_code == 200
    body = response.content.decode()
    wording = Wording.objects.get(
        organisation=ana.organisation, purpose__slug="marketing", version="1", language="sl"
    )
    assert wording.text in body  # the full text of the wording shown
    assert "unsubscribe link" in body and "recorded by staff" in body
    assert "Paper form at reception" in body
    assert (staff_a.full_name or staff_a.email) in body
    assert "the person" in body
    assert "messages on legitimate interest are stopped" in body
    state = {row["purpose"].slug: row["cells"] for row in response.context["state"]}
    assert [c["status"] for c in state["marketing"]] == ["withdrawn", "given", "given"]
    entry = _log(ana.organisation, subject_id=str(ana.pk)).get()
    assert entry.action == "view"
    assert "consent_ledger" in entry.what and entry.actor_id == str(staff_a.pk)


@pytest.mark.obligation("TEN-1")
def test_another_organisations_contact_is_404_and_not_logged(client, bor, staff_a):
    login(client, staff_a)
    assert client.get(f"/contacts/{bor.pk}/consents/").status_code == 404
    assert (
        client.post(
            f"/contacts/{bor.pk}/consents/objection/", {"kind": "direct_marketing"}
        ).status_code
        == 404
    )
    assert not AccessLogEntry.objects.filter(subject_id=str(bor.pk)).exists()
    assert not Objection.objects.exists()


@pytest.mark.obligation("CON-1")
def test_staff_records_consent_with_the_wording_chosen(client, ana, staff_a):
    english = Wording.objects.get(
        organisation=ana.organisation, purpose__slug="surveys", version="1", language="en"
    )
    login(client, staff_a)
    response = client.post(
        f"/contacts/{ana.pk}/consents/record/",
        {"wording": english.pk, "channel": "email", "status": "given", "note": "At the desk"},
    )
    assert response.status_code == 302
    entry = ConsentEntry.objects.get(contact=ana)
    assert (entry.wording_id, entry.channel, entry.status, entry.source) == (
        english.pk,
        "email",
        "given",
        "staff",
    )
    assert entry.recorded_by_id == staff_a.pk and entry.note == "At the desk"


def test_record_form_names_what_is_missing(client, ana, staff_a):
    login(client, staff_a)
    response = client.post(f"/contacts/{ana.pk}/consents/record/", {"channel": "email"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose the purpose and the text that was shown." in body
    assert "Say whether consent was given or withdrawn." in body


def test_a_wording_of_another_organisation_cannot_be_chosen(client, ana, bor, staff_a):
    theirs = Wording.objects.filter(organisation=bor.organisation).first()
    login(client, staff_a)
    response = client.post(
        f"/contacts/{ana.pk}/consents/record/",
        {"wording": theirs.pk, "channel": "email", "status": "given"},
    )
    assert response.status_code == 400
    assert not ConsentEntry.objects.exists()


@pytest.mark.obligation("CNT-4")
def test_giving_consent_to_a_restricted_contact_is_refused_with_the_reason(client, ana, staff_a):
    with acting_as(Actor.system("tests")):
        contact_restrict(contact=ana, reason="accuracy disputed")
    wording = Wording.objects.filter(organisation=ana.organisation).first()
    login(client, staff_a)
    response = client.post(
        f"/contacts/{ana.pk}/consents/record/",
        {"wording": wording.pk, "channel": "all", "status": "given"},
    )
    assert response.status_code == 400
    assert "restricted" in response.content.decode()


@pytest.mark.obligation("CON-6", "DSR-11")
def test_staff_records_a_direct_marketing_objection(client, ana, staff_a):
    record(ana)
    login(client, staff_a)
    response = client.post(
        f"/contacts/{ana.pk}/consents/objection/", {"kind": "direct_marketing", "note": "By phone"}
    )
    assert response.status_code == 302
    assert Objection.objects.get(contact=ana).kind == "direct_marketing"
    assert SuppressionEntry.objects.filter(organisation=ana.organisation).count() == 3
    body = client.get(f"/contacts/{ana.pk}/consents/").content.decode()
    assert "No marketing to this person" in body


@pytest.mark.obligation("DSR-11")
def test_only_the_dpo_records_compelling_grounds(client, ana, staff_a, dpo_a, org_b):
    objection = objection_record(contact=ana, kind="legitimate_interest", source="staff")
    url = f"/contacts/{ana.pk}/consents/objections/{objection.pk}/grounds/"
    login(client, staff_a)
    assert client.post(url, {"reason": "x"}).status_code == 403
    client.logout()
    login(client, dpo_a)
    assert client.get(url).status_code == 200
    response = client.post(url, {"reason": ""})
    assert response.status_code == 400
    assert "Write the compelling legitimate grounds" in response.content.decode()
    response = client.post(url, {"reason": "Follow-up after surgery is medically necessary."})
    assert response.status_code == 302
    objection.refresh_from_db()
    assert objection.has_grounds and objection.grounds_recorded_by_id == dpo_a.pk
    # Another contact's path to the same objection is not found.
    assert (
        client.get(
            f"/contacts/{ana.pk + 999}/consents/objections/{objection.pk}/grounds/"
        ).status_code
        == 404
    )


# --- receipts -----------------------------------------------------------------------------------


@pytest.mark.obligation("CON-1", "CON-7", "CNT-3")
def test_receipt_json_says_what_which_wording_when_and_how(client, ana, staff_a):
    given = record(ana, source="form", ip_address="192.0.2.1", user_agent="Firefox/140")
    record(ana, "withdrawn", channel="sms", source="preference_page")
    login(client, staff_a)
    page = client.get(f"/contacts/{ana.pk}/consents/receipt.json")
    assert "Why are you downloading this receipt?" in page.content.decode()
    response = client.post(
        f"/contacts/{ana.pk}/consents/receipt.json", {"purpose": "patient_request"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    document = json.loads(response.content)
    assert document["organisation"]["name"] == "Clinic A"
    assert document["contact"] == {"id": ana.pk, "first_name": "Ana", "last_name": ""}
    first, second = document["entries"]
    assert first["id"] == given.pk
    assert (first["purpose"], first["channel"], first["status"], first["source"]) == (
        "marketing",
        "all",
        "given",
        "form",
    )
    assert first["wording"]["version"] == "1"
    assert first["wording"]["text"] == given.wording.text
    assert first["recorded_at"].startswith(given.recorded_at.date().isoformat()[:4])
    assert (first["ip_address"], first["user_agent"]) == ("192.0.2.1", "Firefox/140")
    assert first["recorded_by"] == {"type": "the_person", "via": "form"}
    assert (second["status"], second["channel"], second["source"]) == (
        "withdrawn",
        "sms",
        "preference_page",
    )
    state = {(s["purpose"], s["channel"]): s["status"] for s in document["current_state"]}
    assert state[("marketing", "sms")] == "withdrawn"
    assert state[("marketing", "email")] == "given"
    assert state[("surveys", "email")] == "none"
    download = _log(ana.organisation, action="download").get()
    assert download.purpose == "patient_request"
    assert "consent_ledger" in download.what


@pytest.mark.obligation("CON-7", "CNT-3")
def test_receipt_pdf_is_a_pdf_and_logged(client, ana, dpo_a):
    record(ana, note="Čebelica, šola, žaba")  # letters the PDF core fonts lack
    login(client, dpo_a)
    response = client.post(f"/contacts/{ana.pk}/consents/receipt.pdf", {"purpose": "dsr"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert _log(ana.organisation, action="download", purpose="dsr").count() == 1


def test_receipt_needs_a_purpose_and_logs_nothing_without_one(client, ana, staff_a):
    login(client, staff_a)
    response = client.post(f"/contacts/{ana.pk}/consents/receipt.json", {})
    assert response.status_code == 400
    assert "Choose the purpose of the download." in response.content.decode()
    assert not _log(ana.organisation, action="download").exists()


@pytest.mark.obligation("CNT-4")
def test_a_restricted_contacts_receipt_only_for_a_request_or_legal_claim(client, ana, admin_a):
    with acting_as(Actor.system("tests")):
        contact_restrict(contact=ana, reason="accuracy disputed")
    login(client, admin_a)
    url = f"/contacts/{ana.pk}/consents/receipt.json"
    assert client.post(url, {"purpose": "care"}).status_code == 400
    assert client.post(url, {"purpose": "dsr"}).status_code == 200
