"""``/api/v1/dsr/``: intake, every DPO action, errors and tenancy (DSR-1..DSR-5, DSR-14, TEN-1)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dsr.models import DataSubjectRequest
from messaging.models import Message
from tests.consent.conftest import api_client


def _create(client, **body):
    body.setdefault("type", "access")
    body.setdefault("subject", {"email": "ana@example.test"})
    return client.post("/api/v1/dsr/", body, format="json")


@pytest.mark.obligation("DSR-1")
def test_create_returns_state_due_date_and_steps(dsr_api, ana):
    response = _create(dsr_api, received_at="2026-01-31T10:00:00+01:00", details="Everything.")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["type"] == "access"
    assert body["channel"] == "api"
    assert body["state"] == "awaiting_verification"
    assert body["contact"] == ana.pk
    assert body["due_on"] == "2026-02-28"
    assert body["due_at"].startswith("2026-02-28T23:59:59")
    assert body["steps"][0]["kind"] == "received"
    assert "ana@example.test" not in response.content.decode()  # never echoed back
    listed = dsr_api.get("/api/v1/dsr/").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]


@pytest.mark.obligation("DSR-1")
def test_create_with_bad_fields_names_them(dsr_api):
    response = _create(dsr_api, type="forget-me", channel="pigeon", subject={"phone": "12"})
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"type", "channel", "subject.phone"}  # every bad field in one answer
    assert DataSubjectRequest.objects.count() == 0


@pytest.mark.obligation("TEN-1")
@pytest.mark.obligation("DSR-2")
def test_another_organisations_request_is_a_404_everywhere(dsr_api, org_b, ana):
    mine = _create(dsr_api).json()
    theirs = api_client(org_b, scopes=["dsr:read", "dsr:write"])
    assert theirs.get(f"/api/v1/dsr/{mine['id']}/").status_code == 404
    for action in (
        "verify",
        "confirm-subject",
        "request-info",
        "info-received",
        "extend",
        "decide",
        "execute",
        "close",
        "complaint",
    ):
        response = theirs.post(f"/api/v1/dsr/{mine['id']}/{action}/", {}, format="json")
        assert response.status_code in (400, 404), action
        if response.status_code == 400:  # body checked first; the object is never reached
            assert DataSubjectRequest.objects.get(pk=mine["id"]).steps.count() == 2
    assert theirs.get("/api/v1/dsr/").json()["results"] == []
    # A full, valid body still reaches no one else's request.
    response = theirs.post(
        f"/api/v1/dsr/{mine['id']}/extend/",
        {"reason": "Lots of records to go through."},
        format="json",
    )
    assert response.status_code == 404


@pytest.mark.obligation("SEC-3")
def test_read_scope_cannot_write(org_a):
    reader = api_client(org_a, scopes=["dsr:read"])
    response = _create(reader)
    assert response.status_code == 403
    assert "dsr:write" in response.content.decode()


@pytest.mark.obligation("DSR-3")
def test_verify_by_code_then_decide_and_a_conflict_is_a_409(dsr_api, ana):
    created = _create(dsr_api).json()
    url = f"/api/v1/dsr/{created['id']}"
    early = dsr_api.post(f"{url}/decide/", {"decision": "granted"}, format="json")
    assert early.status_code == 409
    assert early["Content-Type"].startswith("application/problem+json")
    assert "Verify the subject's identity first" in early.json()["detail"]
    sent = dsr_api.post(f"{url}/verify/", {"method": "code", "channel": "email"}, format="json")
    assert sent.status_code == 200
    message = Message.objects.filter(contact=ana, purpose="data_subject_request").latest("pk")
    code = next(w.strip(".") for w in message.body.split() if w.strip(".").isdigit())
    wrong = dsr_api.post(f"{url}/verify/", {"method": "code", "code": "99999x"}, format="json")
    assert wrong.status_code == 400
    right = dsr_api.post(f"{url}/verify/", {"method": "code", "code": code}, format="json")
    assert right.status_code == 200
    assert right.json()["state"] == "verified"
    decided = dsr_api.post(f"{url}/decide/", {"decision": "granted"}, format="json")
    assert decided.json()["state"] == "decided"


@pytest.mark.obligation("DSR-3")
def test_staff_attestation_needs_evidence(dsr_api, ana):
    created = _create(dsr_api).json()
    url = f"/api/v1/dsr/{created['id']}/verify/"
    missing = dsr_api.post(
        url,
        {"method": "attestation", "statement": "Seen at reception with ID card."},
        format="json",
    )
    assert missing.status_code == 400
    assert "evidence" in missing.content.decode()
    evidence = SimpleUploadedFile("form.pdf", b"%PDF-1.4 signed form", "application/pdf")
    done = dsr_api.post(
        url,
        {
            "method": "attestation",
            "statement": "Seen at reception with ID card.",
            "evidence": evidence,
        },
        format="multipart",
    )
    assert done.status_code == 200, done.content
    assert done.json()["verification_method"] == "attestation"
    request = DataSubjectRequest.objects.get(pk=created["id"])
    assert request.attachments.get().kind == "evidence"
    assert request.steps.get(kind="verified").note == "Seen at reception with ID card."


@pytest.mark.obligation("DSR-4")
def test_list_filters_and_overdue(dsr_api, ana):
    import datetime as dt

    from django.utils import timezone

    old = _create(dsr_api, received_at=(timezone.now() - dt.timedelta(days=40)).isoformat())
    new = _create(dsr_api, type="erasure")
    overdue = dsr_api.get("/api/v1/dsr/?overdue=true").json()["results"]
    assert [r["id"] for r in overdue] == [old.json()["id"]]
    assert overdue[0]["overdue"] is True and overdue[0]["days_left"] < 0
    erasures = dsr_api.get("/api/v1/dsr/?type=erasure").json()["results"]
    assert [r["id"] for r in erasures] == [new.json()["id"]]
    bad = dsr_api.get("/api/v1/dsr/?state=lost")
    assert bad.status_code == 400
    assert "state" in bad.content.decode()


@pytest.mark.obligation("DSR-6")
@pytest.mark.obligation("DSR-14")
def test_access_end_to_end_through_the_api(dsr_api, ana):
    created = _create(dsr_api).json()
    url = f"/api/v1/dsr/{created['id']}"
    evidence = SimpleUploadedFile("call.txt", b"called back on the number on file", "text/plain")
    dsr_api.post(
        f"{url}/verify/",
        {"method": "attestation", "statement": "Called back on file number.", "evidence": evidence},
        format="multipart",
    )
    dsr_api.post(f"{url}/decide/", {"decision": "granted"}, format="json")
    executed = dsr_api.post(f"{url}/execute/", {}, format="json")
    assert executed.status_code == 200, executed.content
    body = executed.json()
    assert body["state"] == "executed"
    assert body["result"]["artifact_id"]
    again = dsr_api.post(f"{url}/execute/", {}, format="json")
    assert again.status_code == 409  # nothing is done twice
    result_notice = DataSubjectRequest.objects.get(pk=created["id"]).notices.get(kind="result")
    message = Message.objects.get(pk=result_notice.message_id)
    assert "/dsr/download/" in message.body
    closed = dsr_api.post(f"{url}/close/", {}, format="json")
    assert closed.json()["state"] == "closed"
    kinds = [s["kind"] for s in closed.json()["steps"]]
    for kind in ("received", "verified", "decided", "executed", "notice_sent", "closed"):
        assert kind in kinds
