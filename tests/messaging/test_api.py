"""``/api/v1/messages/`` (MSG-2, MSG-3, MSG-6, CON-7, TEN-1, SEC-3): 202 with the legal basis,
422 listing every refusal, 400 naming each bad field, idempotency, scopes, tenancy, the access
log on content, a constant number of queries per list page."""

from __future__ import annotations

import pytest

from carely.audit.models import AccessLogEntry
from consent.services import objection_record
from contacts.services import contact_restrict
from messaging.models import Message, MessageEvent
from messaging.receipts import MessagingOptions
from messaging.services import message_enqueue
from tests.consent.conftest import api_client, make_contact

pytestmark = pytest.mark.django_db

URL = "/api/v1/messages/"
PROBLEM = "application/problem+json"


@pytest.fixture
def api_a(org_a):
    return api_client(org_a)


@pytest.fixture
def api_b(org_b):
    return api_client(org_b)


def reminder_body(contact, **overrides):
    body = {
        "contact": contact.pk,
        "channel": "sms",
        "purpose": "appointment_reminders",
        "template": "reminder",
        "variables": {"when": "jutri ob 9.00"},
    }
    body.update(overrides)
    return body


def errors_of(response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for error in response.json()["errors"]:
        out.setdefault(error["field"], []).append(error["message"])
    return out


@pytest.mark.obligation("MSG-2", "CON-7")
def test_a_transactional_message_is_accepted_with_its_legal_basis(api_a, org_a, ana, reminder_sms):
    response = api_a.post(URL, reminder_body(ana), format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    assert response.status_code == 202, response.json()
    data = response.json()
    assert data["status"] == "queued" and data["legal_basis"] == "contract"
    assert data["consent_entry_id"] is None
    message = Message.objects.get(pk=data["id"])
    assert message.organisation == org_a and message.contact == ana
    assert message.kind == "transactional" and message.template == reminder_sms
    assert message.body == "Pozdravljeni Ana, termin jutri ob 9.00 pri Clinic A."
    assert message.dedupe_key == f"api:{message.api_key_id}:req-1"
    assert MessageEvent.objects.get(message=message).source == "api"


@pytest.mark.obligation("MSG-2", "MSG-9")
def test_the_same_request_twice_makes_one_message(api_a, org_a, ana, reminder_sms):
    first = api_a.post(URL, reminder_body(ana), format="json", HTTP_IDEMPOTENCY_KEY="req-2")
    again = api_a.post(URL, reminder_body(ana), format="json", HTTP_IDEMPOTENCY_KEY="req-2")
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    # Without the header each request is its own message.
    api_a.post(URL, reminder_body(ana), format="json")
    assert Message.objects.count() == 2


@pytest.mark.obligation("MSG-2", "CON-4")
def test_a_refusal_is_a_422_listing_every_reason(api_a, org_a, reminder_sms):
    stranger = make_contact(org_a, first_name="Eva", phone="+38641222333")  # no relationship
    contact_restrict(contact=stranger, reason="dispute")
    response = api_a.post(URL, reminder_body(stranger), format="json")
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "message_refused"
    assert sorted(problem["reasons"]) == ["no_relationship", "restricted"]
    assert not Message.objects.exists()


@pytest.mark.obligation("MSG-2", "DSR-11")
def test_an_objection_on_legitimate_interest_is_a_refusal_reason(api_a, org_a, ana, reminder_sms):
    objection_record(contact=ana, kind="legitimate_interest", source="staff")
    response = api_a.post(URL, reminder_body(ana), format="json")
    assert response.status_code == 422 and response.json()["reasons"] == ["objection"]


@pytest.mark.obligation("MSG-3", "MSG-2")
def test_every_missing_or_unknown_variable_is_named(api_a, org_a, ana):
    from messaging.services import template_save

    template_save(
        organisation=org_a,
        name="visit",
        kind="transactional",
        channel="sms",
        language="sl",
        body="{{ first_name }}: {{ when }} pri {{ doctor }}.",
        variables=["when", "doctor"],
    )
    missing = api_a.post(URL, reminder_body(ana, template="visit", variables={}), format="json")
    assert missing.status_code == 400 and missing["Content-Type"] == PROBLEM
    messages = errors_of(missing)["variables"]
    assert messages == [
        "No value for {{ when }}. Give one, or change the template.",
        "No value for {{ doctor }}. Give one, or change the template.",
    ]
    assert "template" not in errors_of(missing)  # the advice is not a problem of its own
    unknown = api_a.post(
        URL,
        reminder_body(ana, template="visit", variables={"when": "9h", "doctor": "X", "room": "3"}),
        format="json",
    )
    assert unknown.status_code == 400 and "room" in errors_of(unknown)["variables"][0]
    assert not Message.objects.exists()


@pytest.mark.obligation("MSG-2")
def test_bad_fields_are_each_named(api_a, org_a, ana, reminder_sms):
    response = api_a.post(URL, {"channel": "fax", "purpose": "x y"}, format="json")
    assert response.status_code == 400
    assert set(errors_of(response)) == {"channel", "purpose"}
    both = api_a.post(URL, reminder_body(ana, external_id="K-1", text="Hi"), format="json")
    assert set(errors_of(both)) == {"contact", "template", "variables"}
    unknown = api_a.post(URL, reminder_body(ana, template="nope"), format="json")
    assert errors_of(unknown) == {"template": ["No current sms template named 'nope'."]}


@pytest.mark.obligation("MSG-2")
def test_free_text_only_where_the_organisation_allows_it(api_a, org_a, ana):
    body = {
        "contact": ana.pk,
        "channel": "sms",
        "purpose": "appointment_reminders",
        "text": "Termin je prestavljen na 10.00.",
    }
    refused = api_a.post(URL, body, format="json")
    assert refused.status_code == 400 and "templates only" in errors_of(refused)["text"][0]
    MessagingOptions.objects.create(organisation=org_a, api_free_text=True)
    accepted = api_a.post(URL, body, format="json")
    assert accepted.status_code == 202
    assert Message.objects.get().body == "Termin je prestavljen na 10.00."


@pytest.mark.obligation("MSG-2")
def test_a_contact_by_external_id_and_a_scheduled_send(api_a, org_a, reminder_sms):
    contact = make_contact(
        org_a,
        first_name="Ivo",
        phone="+38641777888",
        external_id="K-77",
        relationship_status="active",
    )
    response = api_a.post(
        URL,
        {
            "external_id": "K-77",
            "channel": "sms",
            "purpose": "appointment_reminders",
            "template": reminder_sms.pk,
            "variables": {"when": "v petek"},
            "send_at": "2030-01-02T07:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    message = Message.objects.get()
    assert message.contact == contact and message.due_at.isoformat() == "2030-01-02T07:00:00+00:00"


@pytest.mark.obligation("TEN-1", "MSG-2")
def test_another_organisations_contacts_and_messages_are_not_found(
    api_a, api_b, org_a, ana, reminder_sms
):
    sent = api_a.post(URL, reminder_body(ana), format="json").json()
    response = api_b.get(f"{URL}{sent['id']}/")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM
    assert api_b.get(URL).json()["results"] == []
    # Organisation B cannot send to A's contact: the id is simply unknown there.
    post = api_b.post(URL, reminder_body(ana), format="json")
    assert post.status_code == 400
    assert errors_of(post) == {"contact": [f"No contact '{ana.pk}' in your organisation."]}
    assert Message.objects.count() == 1


@pytest.mark.obligation("SEC-3", "MSG-2")
def test_scopes_are_required(org_a, ana, reminder_sms):
    read_only = api_client(org_a, scopes=["messages:read"])
    write_only = api_client(org_a, scopes=["messages:write"])
    contacts_only = api_client(org_a, scopes=["contacts:read", "contacts:write"])
    assert read_only.post(URL, reminder_body(ana), format="json").status_code == 403
    assert contacts_only.get(URL).status_code == 403
    created = write_only.post(URL, reminder_body(ana), format="json")
    assert created.status_code == 202
    assert write_only.get(f"{URL}{created.json()['id']}/").status_code == 403
    assert read_only.get(f"{URL}{created.json()['id']}/").status_code == 200
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401
    assert Message.objects.count() == 1


@pytest.mark.obligation("MSG-6", "CON-7", "CNT-3")
def test_reading_one_message_shows_content_timeline_and_basis_and_is_access_logged(
    api_a, org_a, ana, offer_sms
):
    message = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="sms",
        kind="marketing",
        purpose="marketing",
        template=offer_sms,
        dedupe_key="campaign:9",
    )
    response = api_a.get(f"{URL}{message.pk}/")
    assert response.status_code == 200
    data = response.json()
    assert data["legal_basis"] == "consent" and data["consent_entry_id"] == message.consent_entry_id
    assert (
        data["body"].startswith("Ana, ta mesec 20 % popusta")
        and data["to_address"] == "+38641123456"
    )
    assert [e["kind"] for e in data["timeline"]] == ["queued"]
    (entry,) = AccessLogEntry.objects.filter(subject_type="contact", subject_id=str(ana.pk))
    assert entry.actor_type == "api_key" and f"message:{message.pk}" in entry.what
    assert "body" in entry.what


@pytest.mark.obligation("MSG-6")
def test_the_list_filters_pages_and_costs_the_same_queries_whatever_its_size(
    api_a, org_a, ana, bor, reminder_sms, offer_sms, django_assert_num_queries
):
    for n in range(3):
        message_enqueue(
            organisation=org_a,
            contact=ana,
            channel="sms",
            kind="transactional",
            purpose="appointment_reminders",
            template=reminder_sms,
            variables={"when": f"{n}h"},
            dedupe_key=f"staff:{n}",
        )
    message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="sms",
        kind="marketing",
        purpose="marketing",
        template=offer_sms,
        dedupe_key="campaign:1",
    )
    message_enqueue(
        organisation=org_a,
        contact=bor,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        template=reminder_sms,
        variables={"when": "9h"},
        dedupe_key="staff:b",
    )
    page = api_a.get(URL, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert "body" not in page["results"][0]  # the log page shows no content
    assert len(api_a.get(URL, {"kind": "marketing"}).json()["results"]) == 1
    assert len(api_a.get(URL, {"contact": bor.pk}).json()["results"]) == 1
    assert len(api_a.get(URL, {"created_since": "2000-01-01T00:00:00Z"}).json()["results"]) == 5
    bad = api_a.get(URL, {"status": "lost", "contact": "x"})
    assert bad.status_code == 400 and set(errors_of(bad)) == {"status", "contact"}
    assert not AccessLogEntry.objects.exists()
    # key lookup + key touch + one page: the same for 2 rows as for 5.
    with django_assert_num_queries(3, exact=False) as small:
        api_a.get(URL, {"page_size": 2})
    with django_assert_num_queries(len(small.captured_queries)):
        api_a.get(URL, {"page_size": 50})
