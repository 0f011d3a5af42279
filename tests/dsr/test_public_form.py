"""The public request form (DSR-1, DSR-2, DSR-3): a request with channel "form" in the clinic's
queue, the same page whether or not the person is a patient, the code sent to the address on
file and checked on the verify page, and abuse refused without a CAPTCHA (honeypot, a signed
render time of 3 s to 2 h, rate limits per address and per organisation)."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from dsr import public_views
from dsr.forms import form_started_stamp
from dsr.models import DataSubjectRequest, State, StepKind, VerificationCode
from messaging.models import Message


def _form(**data) -> dict[str, str]:
    values = {
        "type": "access",
        "name": "Ana Novak",
        "email": "ana@example.test",
        "phone": "",
        "details": "",
        "language": "sl",
        "website": "",
        # Shown ten seconds ago: a person's pace.
        "started": form_started_stamp(time.time() - 10),
    }
    values.update(data)
    return values


def _code_from_outbox(contact) -> str:
    message = Message.objects.filter(contact=contact, purpose="data_subject_request").latest("pk")
    return re.findall(r"\b\d{6}\b", message.body)[-1]


def _english(client) -> None:
    """Choose English on the page (kept in the session), as the language buttons do."""
    client.post("/language/", {"language": "en", "next": "/"})


def _neutral(html: str, reference: str) -> str:
    """The page without what differs by design: the reference and the CSRF token."""
    html = html.replace(reference, "REF")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


@pytest.mark.obligation("DSR-1")
def test_the_form_is_in_slovenian_by_default_and_unknown_clinics_are_not_found(client, org_a):
    response = client.get("/privacy-request/clinic-a/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="sl">' in html and "Clinic A" in html
    _english(client)
    assert '<html lang="en">' in client.get("/privacy-request/clinic-a/").content.decode()
    assert 'name="website"' in html and 'name="started"' in html
    assert client.get("/privacy-request/no-such-clinic/").status_code == 404
    assert client.post("/privacy-request/no-such-clinic/", _form()).status_code == 404


@pytest.mark.obligation("DSR-1", "DSR-3")
def test_a_match_and_a_stranger_see_the_same_page(client, org_a, ana):
    response = client.post("/privacy-request/clinic-a/", _form())
    matched = DataSubjectRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/privacy-request/clinic-a/{matched.reference}/verify/"
    assert matched.organisation_id == org_a.pk and matched.channel == "form"
    assert matched.type == "access" and matched.contact_id == ana.pk
    # Exactly one contact matched: the code went out at once, to the address on file.
    assert VerificationCode.objects.filter(request=matched).count() == 1
    assert matched.steps.filter(kind=StepKind.CODE_SENT).exists()
    page_for_ana = client.get(response["Location"]).content.decode()

    stranger = Client()
    response = stranger.post(
        "/privacy-request/clinic-a/", _form(name="Nobody", email="nobody@example.test")
    )
    unknown = DataSubjectRequest.objects.exclude(pk=matched.pk).get()
    assert response["Location"] == f"/privacy-request/clinic-a/{unknown.reference}/verify/"
    assert unknown.contact_id is None and unknown.channel == "form"
    assert not VerificationCode.objects.filter(request=unknown).exists()
    page_for_stranger = stranger.get(response["Location"]).content.decode()
    assert 'name="code"' in page_for_ana
    assert _neutral(page_for_ana, matched.reference) == _neutral(
        page_for_stranger, unknown.reference
    )
    # A wrong code reads the same for both: nothing tells a stranger whether anyone matched.
    wrong_ana = client.post(
        f"/privacy-request/clinic-a/{matched.reference}/verify/", {"code": "000000"}
    )
    wrong_stranger = stranger.post(response["Location"], {"code": "000000"})
    assert wrong_ana.status_code == wrong_stranger.status_code == 400
    assert _neutral(wrong_ana.content.decode(), matched.reference) == _neutral(
        wrong_stranger.content.decode(), unknown.reference
    )


@pytest.mark.obligation("DSR-3")
def test_the_right_code_verifies_and_a_wrong_one_is_counted(client, org_a, ana):
    _english(client)
    response = client.post("/privacy-request/clinic-a/", _form(language="en"))
    verify_url = response["Location"]
    request = DataSubjectRequest.objects.get()
    assert request.language == "en"
    response = client.post(verify_url, {"code": "123 456"})
    assert response.status_code == 400
    assert "not right or no longer valid" in response.content.decode()
    record = VerificationCode.objects.get(request=request)
    assert record.attempts == 1
    assert request.steps.filter(kind=StepKind.CODE_FAILED).count() == 1
    code = _code_from_outbox(ana)
    response = client.post(verify_url, {"code": code})
    assert response.status_code == 200
    request.refresh_from_db()
    assert request.state == State.VERIFIED and request.verification_method == "code"
    assert request.steps.filter(kind=StepKind.VERIFIED).count() == 1
    # Coming back to the page later shows the confirmation, not the code form again.
    assert 'name="code"' not in client.get(verify_url).content.decode()


@pytest.mark.obligation("DSR-1")
def test_honeypot_too_fast_and_stale_forms_are_refused(client, org_a, ana):
    _english(client)
    cases = {
        "honeypot": _form(website="http://spam.example"),
        "too fast": _form(started=form_started_stamp(time.time() - 1)),
        "stale": _form(started=form_started_stamp(time.time() - 3 * 3600)),
        "forged": _form(started="12345"),
        "missing": _form(started=""),
    }
    for case, data in cases.items():
        response = client.post("/privacy-request/clinic-a/", data)
        assert response.status_code == 400, case
        assert 'class="form-error" role="alert"' in response.content.decode(), case
    assert not DataSubjectRequest.objects.exists()
    assert not Message.objects.exists()


@pytest.mark.obligation("DSR-1")
def test_rate_limits_per_address_and_per_organisation(client, org_a, monkeypatch):
    monkeypatch.setattr(public_views, "REQUESTS_PER_ADDRESS_HOUR", 2)
    for n in range(2):
        response = client.post("/privacy-request/clinic-a/", _form(email=f"p{n}@example.test"))
        assert response.status_code == 302
    response = client.post("/privacy-request/clinic-a/", _form(email="p3@example.test"))
    assert response.status_code == 429
    assert 'class="form-error" role="alert"' in response.content.decode()
    assert DataSubjectRequest.objects.count() == 2

    monkeypatch.setattr(public_views, "REQUESTS_PER_ADDRESS_HOUR", 100)
    monkeypatch.setattr(public_views, "REQUESTS_PER_ORGANISATION_HOUR", 3)
    # Two requests reached the clinic this hour (the one refused for its address never got as
    # far as the clinic's count): one more from any address, then the clinic's limit holds.
    statuses = [
        Client(REMOTE_ADDR=f"192.0.2.{n}")
        .post("/privacy-request/clinic-a/", _form(email=f"q{n}@example.test"))
        .status_code
        for n in range(1, 4)
    ]
    assert statuses == [302, 429, 429]
    assert DataSubjectRequest.objects.count() == 3


@pytest.mark.obligation("DSR-1")
def test_a_request_needs_an_address_to_answer(client, org_a):
    response = client.post("/privacy-request/clinic-a/", _form(email="", phone=""))
    assert response.status_code == 400
    assert not DataSubjectRequest.objects.exists()
    response = client.post("/privacy-request/clinic-a/", _form(email="not-an-address"))
    assert response.status_code == 400
    assert re.search(r'class="field-error"[^>]*>[^<]*not-an-address', response.content.decode())


@pytest.mark.obligation("DSR-2", "DSR-3")
def test_the_platform_form_files_into_the_platform_queue(client, org_a, ana, staff_a, mailoutbox):
    assert client.get("/privacy-request/platform/").status_code == 200
    response = client.post("/privacy-request/platform/", _form(subject_kind="visitor"))
    visitor = DataSubjectRequest.objects.get()
    assert response["Location"] == f"/privacy-request/platform/{visitor.reference}/verify/"
    assert visitor.organisation_id is None and visitor.subject_kind == "visitor"
    assert visitor.channel == "form"
    # The platform never looks up a clinic's patients from its own form.
    assert visitor.contact_id is None and not visitor.codes.exists()
    page_for_visitor = client.get(response["Location"]).content.decode()
    # A user of the platform writing about their account: the code goes to the account's
    # address, and the page reads the same as the visitor's.
    user_client = Client(REMOTE_ADDR="192.0.2.50")
    response = user_client.post(
        "/privacy-request/platform/", _form(subject_kind="staff_user", email=staff_a.email)
    )
    own = DataSubjectRequest.objects.exclude(pk=visitor.pk).get()
    assert own.subject_user_id == staff_a.pk and own.codes.count() == 1
    page_for_user = user_client.get(response["Location"]).content.decode()
    assert _neutral(page_for_user, own.reference) == _neutral(page_for_visitor, visitor.reference)
    code_mail = [
        m for m in mailoutbox if m.to == [staff_a.email] and re.search(r"\b\d{6}\b", m.body)
    ]
    code = re.findall(r"\b\d{6}\b", code_mail[-1].body)[-1]
    assert user_client.post(response["Location"], {"code": code}).status_code == 200
    own.refresh_from_db()
    assert own.state == State.VERIFIED
    response = client.post("/privacy-request/platform/", _form(subject_kind=""))
    assert response.status_code == 400
    assert DataSubjectRequest.objects.count() == 2
