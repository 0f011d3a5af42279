"""``/api/v1/contacts/{id}/consents/`` (CON-1, CON-2, CNT-3, CNT-4, TEN-1, TEN-3, SEC-3)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from carely.audit.models import AccessLogEntry
from carely.orgs.services import organisation_suspend
from consent.models import ConsentEntry
from contacts.services import contact_restrict
from tests.consent.conftest import api_client, make_contact, record

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
GIVE = {
    "purpose": "marketing",
    "channel": "email",
    "status": "given",
    "wording_version": "1",
    "source": "form",
    "ip_address": "192.0.2.7",
    "user_agent": "Mozilla/5.0 (X11)",
}


def url(contact) -> str:
    return f"/api/v1/contacts/{contact.pk if hasattr(contact, 'pk') else contact}/consents/"


@pytest.fixture
def api_a(org_a):
    return api_client(org_a)


@pytest.fixture
def api_b(org_b):
    return api_client(org_b)


@pytest.mark.obligation("CON-1", "CON-2")
def test_post_records_an_entry_with_its_evidence(api_a, org_a, ana):
    response = api_a.post(url(ana), GIVE, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    entry = ConsentEntry.objects.get(pk=body["id"])
    assert (entry.contact, entry.organisation, entry.api_key.organisation) == (ana, org_a, org_a)
    assert {k: body[k] for k in GIVE if k != "wording_version"} == {
        k: v for k, v in GIVE.items() if k != "wording_version"
    }
    assert body["wording_version"] == "1" and body["wording_language"] == "sl"
    withdraw = {"purpose": "marketing", "channel": "all", "status": "withdrawn", "source": "api"}
    response = api_a.post(url(ana), withdraw, format="json")
    assert response.status_code == 201 and response.json()["wording_version"] is None


@pytest.mark.obligation("CON-1", "CNT-3")
def test_get_returns_the_ledger_and_the_current_state_and_is_access_logged(api_a, org_a, ana):
    given = record(ana, channel="all")
    sms_off = record(ana, "withdrawn", channel="sms", source="stop_reply")
    response = api_a.get(url(ana))
    assert response.status_code == 200
    body = response.json()
    assert body["contact"] == ana.pk
    assert [e["id"] for e in body["ledger"]] == [given.pk, sms_off.pk]
    assert body["ledger"][1]["source"] == "stop_reply"
    current = {(s["purpose"], s["channel"]): s for s in body["current"]}
    assert len(current) == 4 * 3  # every purpose and channel, recorded or not
    assert current[("marketing", "sms")]["status"] == "withdrawn"
    assert current[("marketing", "sms")]["entry_id"] == sms_off.pk
    assert current[("marketing", "email")]["entry_id"] == given.pk
    assert current[("surveys", "email")]["status"] is None
    log = AccessLogEntry.objects.get()
    assert (log.subject_type, log.subject_id, log.what, log.actor_type) == (
        "contact",
        str(ana.pk),
        ["consents"],
        "api_key",
    )


def test_get_query_count_does_not_grow_with_the_ledger(api_a, ana):
    record(ana)
    api_a.get(url(ana))  # the key's first use writes last_used_at
    with CaptureQueriesContext(connection) as first:
        api_a.get(url(ana))
    for n in range(6):
        record(ana, "withdrawn" if n % 2 else "given", channel=["sms", "email", "all"][n % 3])
    with CaptureQueriesContext(connection) as later:
        assert len(api_a.get(url(ana)).json()["ledger"]) == 7
    assert len(later.captured_queries) == len(first.captured_queries)


@pytest.mark.obligation("CON-1")
def test_bad_input_is_a_problem_naming_each_field_with_advice(api_a, ana):
    bad = {
        "purpose": "newsletter",
        "channel": "fax",
        "status": "maybe",
        "source": "unsubscribe_link",
        "ip_address": "999.1.1.1",
    }
    response = api_a.post(url(ana), bad, format="json")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"channel", "status", "source", "ip_address"}
    assert "sms, email, whatsapp, all" in errors["channel"]
    assert "form, api, staff, import, guardian" in errors["source"]
    # Types pass; the service then names the unknown purpose and the missing wording.
    response = api_a.post(url(ana), {**GIVE, "purpose": "newsletter"}, format="json")
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"purpose"} and "“marketing”" in errors["purpose"]
    response = api_a.post(url(ana), {**GIVE, "wording_version": ""}, format="json")
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"wording_version"} and "version" in errors["wording_version"]
    response = api_a.post(url(ana), {**GIVE, "wording_version": "9"}, format="json")
    assert "Published versions: “1”" in response.json()["errors"][0]["message"]
    teen_without_guardian = make_contact(ana.organisation, first_name="Tim")
    response = api_a.post(url(teen_without_guardian), {**GIVE, "source": "guardian"}, format="json")
    assert response.json()["errors"][0]["field"] == "source"
    assert not ConsentEntry.objects.exists()


@pytest.mark.obligation("TEN-1")
def test_another_organisations_contact_is_not_found(api_b, ana):
    record(ana)
    for response in (api_b.get(url(ana)), api_b.post(url(ana), GIVE, format="json")):
        assert response.status_code == 404 and response["Content-Type"] == PROBLEM
    assert ConsentEntry.objects.count() == 1
    assert not AccessLogEntry.objects.exists()
    assert api_b.get(url(10**9)).status_code == 404


@pytest.mark.obligation("SEC-3")
def test_scopes_and_anonymous_callers(org_a, ana):
    assert APIClient().get(url(ana)).status_code == 401
    reader = api_client(org_a, scopes=["consents:read"])
    assert reader.get(url(ana)).status_code == 200
    response = reader.post(url(ana), GIVE, format="json")
    assert response.status_code == 403 and response.json()["code"] == "missing_scope"
    contacts_only = api_client(org_a, scopes=["contacts:read", "contacts:write"])
    assert contacts_only.get(url(ana)).status_code == 403
    writer = api_client(org_a, scopes=["consents:write"])
    assert writer.post(url(ana), GIVE, format="json").status_code == 201
    assert writer.get(url(ana)).status_code == 403
    assert ConsentEntry.objects.count() == 1


@pytest.mark.obligation("CNT-4", "CON-2")
def test_a_restricted_contact_cannot_be_given_consent_but_can_withdraw(api_a, ana):
    contact_restrict(contact=ana, reason="DSR 7")
    response = api_a.post(url(ana), GIVE, format="json")
    assert response.status_code == 409 and response.json()["code"] == "contact_restricted"
    withdraw = {"purpose": "marketing", "channel": "all", "status": "withdrawn", "source": "api"}
    assert api_a.post(url(ana), withdraw, format="json").status_code == 201
    assert list(ConsentEntry.objects.values_list("status", flat=True)) == ["withdrawn"]


@pytest.mark.obligation("TEN-3")
def test_a_suspended_organisation_reads_but_does_not_write(api_a, org_a, ana):
    organisation_suspend(organisation=org_a, reason="unpaid")
    assert api_a.get(url(ana)).status_code == 200
    response = api_a.post(url(ana), GIVE, format="json")
    assert response.status_code == 403 and response.json()["code"] == "organisation_suspended"
