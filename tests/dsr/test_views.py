"""The DPO's request pages (DSR-1..DSR-5, DSR-13, DSR-14): the persona matrix and the organisation
boundary on every page and action, the queue's deadlines and filters, the request's page (access
logged, candidates never merged) and its actions through the real services, staff entry with
the original attached."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from carely.audit.models import AccessLogEntry
from dsr.models import (
    ArtifactKind,
    AttachmentKind,
    DataSubjectRequest,
    DsrNotice,
    NoticeStatus,
    State,
    StepKind,
)
from dsr.services import DsrConflict, dsr_code_send, dsr_receive
from dsr.web_urls import ACTION_NAMES
from tests.conftest import login
from tests.consent.conftest import make_contact
from tests.dsr.factories import make_request

TODAY = dt.date(2026, 11, 25)
NOON = dt.datetime(2026, 11, 25, 11, 0, tzinfo=dt.UTC)


def _body(response) -> str:
    return response.content.decode()


def _received(org, days_ago: int, **fields):
    """A request received ``days_ago`` days before TODAY (due one month after that)."""
    return make_request(
        org, received_at=NOON - dt.timedelta(days=days_ago), state=State.RECEIVED, **fields
    )


def _queue_rows(html: str) -> list[str]:
    return re.findall(r'data-reference="([^"]+)"', html)


# --- who may see what (DSR-2, TEN-1, SEC-2) ------------------------------------------------------


@pytest.mark.obligation("DSR-2")
def test_anonymous_go_to_sign_in_and_staff_are_refused(client, org_a, staff_a):
    req = make_request(org_a)
    paths = ["/dsr/", "/dsr/new/", "/dsr/platform/", f"/dsr/{req.pk}/"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path
    for path in _action_paths(req):
        response = client.post(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path
    login(client, staff_a)
    for path in paths:
        assert client.get(path).status_code == 403, path
    for path in _action_paths(req):
        assert client.post(path, {"decision": "granted"}).status_code == 403, path
    req.refresh_from_db()
    assert req.state == State.VERIFIED and not req.decision


def _action_paths(req) -> list[str]:
    from django.urls import reverse

    return [reverse(f"dsr:{name}", args=[req.pk]) for name in ACTION_NAMES]


@pytest.mark.obligation("DSR-2", "TEN-1")
def test_another_clinics_dpo_never_sees_the_request(client, org_a, org_b, ana):
    from tests.factories import MembershipFactory

    dpo_b = MembershipFactory(organisation=org_b, role="dpo").user
    req = make_request(org_a, ana, state=State.RECEIVED, channel="letter")
    attachment = req.attachments.create(
        organisation=org_a,
        kind=AttachmentKind.ORIGINAL,
        stored_file=SimpleUploadedFile("letter.txt", b"I want my data"),
        content_type="text/plain",
        size=14,
        sha256="0" * 64,
    )
    notice = DsrNotice.objects.create(
        organisation=org_a,
        request=req,
        kind="receipt",
        channel="letter",
        language="sl",
        status=NoticeStatus.STAFF_TO_SEND,
    )
    login(client, dpo_b)
    queue = _body(client.get("/dsr/?state=all"))
    assert req.reference not in queue
    assert client.get(f"/dsr/{req.pk}/").status_code == 404
    assert client.get(f"/dsr/{req.pk}/attachments/{attachment.pk}/").status_code == 404
    posts = {
        "decide": {"decision": "refused_unfounded", "reason": "Nothing to see here at all."},
        "extend": {"reason": "Very complex request indeed."},
        "request_info": {"what": "Please send a copy of your ID card."},
        "close": {},
        "forward": {"organisation": org_b.pk},
    }
    for path in _action_paths(req):
        name = path.rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
        response = client.post(path, posts.get(name, {}))
        assert response.status_code == 404, path
    assert client.post(f"/dsr/{req.pk}/notices/{notice.pk}/sent/").status_code == 404
    req.refresh_from_db()
    assert req.state == State.RECEIVED and not req.decision and req.extended_at is None
    assert not req.steps.exists()
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.STAFF_TO_SEND


@pytest.mark.obligation("DSR-2")
def test_the_platform_queue_is_the_platform_dpos_only(client, org_a, dpo_a, platform_dpo, operator):
    platform_req = make_request(None, state=State.RECEIVED, subject_kind="visitor")
    clinic_req = make_request(org_a, state=State.RECEIVED)
    login(client, dpo_a)
    assert client.get("/dsr/platform/").status_code == 403
    assert client.get(f"/dsr/{platform_req.pk}/").status_code == 404
    assert platform_req.reference not in _body(client.get("/dsr/?state=all"))
    client.logout()
    login(client, operator)
    assert client.get("/dsr/platform/").status_code == 403
    assert client.get(f"/dsr/{platform_req.pk}/").status_code == 403
    client.logout()
    login(client, platform_dpo)
    page = _body(client.get("/dsr/platform/"))
    assert platform_req.reference in page and clinic_req.reference not in page
    assert client.get(f"/dsr/{platform_req.pk}/").status_code == 200
    # The platform DPO has no clinic queue and never opens a clinic's request.
    assert client.get("/dsr/").status_code == 403
    assert client.get(f"/dsr/{clinic_req.pk}/").status_code == 404


# --- the queue (DSR-4) ----------------------------------------------------------------------------


@pytest.mark.obligation("DSR-4")
@time_machine.travel(NOON, tick=False)
def test_queue_shows_due_dates_days_left_and_marks_overdue(client, org_a, org_b, dpo_a):
    overdue = _received(
        org_a, 40, type="erasure"
    )  # received 16.10.: due 16.11.2026, 9 days overdue
    soon = _received(org_a, 27)  # received 29.10.: due 29.11.2026, 4 days left
    later = _received(org_a, 2, type="rectification")  # due 23.12.2026
    closed = make_request(
        org_a, received_at=NOON - dt.timedelta(days=60), state=State.CLOSED, type="objection"
    )
    other = _received(org_b, 40)
    login(client, dpo_a)
    html = _body(client.get("/dsr/"))
    assert _queue_rows(html) == [overdue.reference, soon.reference, later.reference]
    assert other.reference not in html and closed.reference not in html
    row = html.split(f'data-reference="{overdue.reference}"')[0].rsplit("<tr", 1)[1]
    assert 'class="is-overdue"' in row
    overdue_row = html.split(f'data-reference="{overdue.reference}"')[1].split("</tr>")[0]
    assert "16.11.2026" in overdue_row and "overdue by 9 days" in overdue_row
    soon_row = html.split(f'data-reference="{soon.reference}"')[1].split("</tr>")[0]
    assert "29.11.2026" in soon_row and "4 days left" in soon_row and "overdue" not in soon_row
    later_row = html.split(f'data-reference="{later.reference}"')[1].split("</tr>")[0]
    assert "23.12.2026" in later_row and "28 days left" in later_row
    assert re.search(r'id="overdue-count"><span class="stat__n">1</span>', html)
    assert re.search(r'id="due-soon-count"><span class="stat__n">1</span>', html)


@pytest.mark.obligation("DSR-4")
@time_machine.travel(NOON, tick=False)
def test_queue_filters_by_type_and_state(client, org_a, dpo_a):
    access = _received(org_a, 3)
    erasure = _received(org_a, 5, type="erasure")
    closed = make_request(org_a, received_at=NOON - dt.timedelta(days=9), state=State.CLOSED)
    login(client, dpo_a)
    assert _queue_rows(_body(client.get("/dsr/?type=erasure"))) == [erasure.reference]
    assert _queue_rows(_body(client.get("/dsr/?state=closed"))) == [closed.reference]
    everything = _queue_rows(_body(client.get("/dsr/?state=all")))
    assert everything == [closed.reference, erasure.reference, access.reference]
    assert _queue_rows(_body(client.get("/dsr/?state=all&type=access"))) == [
        closed.reference,
        access.reference,
    ]
    # An unknown filter value falls back to the default (open only), not to "everything".
    assert _queue_rows(_body(client.get("/dsr/?state=bogus"))) == [
        erasure.reference,
        access.reference,
    ]


# --- one request ----------------------------------------------------------------------------------


@pytest.mark.obligation("DSR-1", "CNT-3")
def test_detail_shows_the_subject_and_logs_the_viewing(client, org_a, dpo_a, ana, bor):
    twin = make_contact(org_a, first_name="Ana", last_name="Twin", email="ana@example.test")
    req = dsr_receive(
        organisation=org_a,
        type="access",
        channel="form",
        subject={"name": "Ana Novak", "email": "ana@example.test"},
        details="Send me everything you hold.",
    )
    assert req.contact_id is None  # two contacts share the address: nobody is picked
    login(client, dpo_a)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert "Ana Novak" in html and "Send me everything you hold." in html
    assert html.count("This is the person") == 2
    assert f"(#{ana.pk})" in html and f"(#{twin.pk})" in html
    logged = AccessLogEntry.objects.for_organisation(org_a)
    viewed = logged.get(subject_type="dsr_request", subject_id=str(req.pk))
    assert viewed.purpose == "dsr" and "subject_email" in viewed.what
    assert viewed.actor_id == str(dpo_a.pk)
    assert set(logged.filter(subject_type="contact").values_list("subject_id", flat=True)) == {
        str(ana.pk),
        str(twin.pk),
    }
    # Another clinic's contact is not found from here (TEN-1): nothing is confirmed.
    response = client.post(f"/dsr/{req.pk}/confirm-subject/", {"contact": bor.pk}, follow=True)
    assert "No such contact in this clinic." in _body(response)
    req.refresh_from_db()
    assert req.contact_id is None
    response = client.post(f"/dsr/{req.pk}/confirm-subject/", {"contact": twin.pk})
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.contact_id == twin.pk and req.subject_confirmed_at is not None
    assert req.steps.filter(kind=StepKind.SUBJECT_CONFIRMED).count() == 1


@pytest.mark.obligation("DSR-3")
def test_code_sent_and_checked_from_the_page(client, org_a, dpo_a, ana, mailoutbox):
    req = dsr_receive(
        organisation=org_a, type="access", channel="phone", subject={"email": "ana@example.test"}
    )
    assert req.contact_id == ana.pk and req.state == State.AWAITING_VERIFICATION
    login(client, dpo_a)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert 'id="action-code-send"' in html and 'id="action-code-check"' not in html
    response = client.post(f"/dsr/{req.pk}/code/send/", {"channel": "email"}, follow=True)
    assert "Code sent to the address on file" in _body(response)
    assert req.codes.count() == 1
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert 'id="action-code-check"' in html
    response = client.post(f"/dsr/{req.pk}/code/check/", {"code": "000000"}, follow=True)
    assert "not right" in _body(response)
    assert req.codes.get().attempts == 1
    req.refresh_from_db()
    assert req.verified_at is None


@pytest.mark.obligation("DSR-3", "DSR-5")
def test_errors_show_at_the_field_and_conflicts_as_a_message(client, org_a, dpo_a, ana):
    req = make_request(org_a, ana, state=State.AWAITING_VERIFICATION)
    req.verified_at = None
    req.save(update_fields=["verified_at"])
    login(client, dpo_a)
    # DsrInvalid: a refusal without a reason, shown under the reason field.
    response = client.post(f"/dsr/{req.pk}/decide/", {"decision": "refused_excessive"})
    assert response.status_code == 400
    html = _body(response)
    assert re.search(r'id="id_reason-error-1">A refusal or a fee needs its reason', html)
    # DsrConflict: granting before identity is verified, said calmly on the page.
    response = client.post(f"/dsr/{req.pk}/decide/", {"decision": "granted"}, follow=True)
    assert "Verify the subject&#x27;s identity first" in _body(response)
    req.refresh_from_db()
    assert req.state == State.AWAITING_VERIFICATION and not req.decision
    # The attestation needs its evidence.
    response = client.post(
        f"/dsr/{req.pk}/attest/", {"statement": "Identity card checked at reception."}
    )
    assert response.status_code == 400 and "Attach the evidence" in _body(response)
    response = client.post(
        f"/dsr/{req.pk}/attest/",
        {
            "statement": "Identity card checked at reception.",
            "evidence": SimpleUploadedFile("id.pdf", b"%PDF-1.4 scan", "application/pdf"),
        },
    )
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.state == State.VERIFIED and req.verification_method == "attestation"
    assert req.attachments.filter(kind=AttachmentKind.EVIDENCE).count() == 1


@pytest.mark.obligation("DSR-4")
@time_machine.travel(NOON, tick=False)
def test_extension_shows_its_last_day_or_why_not(client, org_a, dpo_a, ana):
    fresh = make_request(org_a, ana, received_at=NOON - dt.timedelta(days=3))
    late = make_request(org_a, ana, received_at=NOON - dt.timedelta(days=40))
    login(client, dpo_a)
    html = _body(client.get(f"/dsr/{fresh.pk}/"))
    assert "Possible until 22.12.2026" in html
    html = _body(client.get(f"/dsr/{late.pk}/"))
    assert 'id="extension-why-not"' in html and "by 16.11.2026" in html
    response = client.post(
        f"/dsr/{fresh.pk}/extend/", {"reason": "Records in three systems to search."}
    )
    assert response.status_code == 302
    fresh.refresh_from_db()
    assert fresh.due_on == dt.date(2027, 2, 22) and fresh.extended_at is not None
    assert "Already extended on 25.11.2026" in _body(client.get(f"/dsr/{fresh.pk}/"))


@pytest.mark.obligation("DSR-14", "DSR-13")
def test_decide_execute_close_and_complain_from_the_page(client, org_a, dpo_a, ana):
    req = make_request(org_a, ana, type="objection", state=State.VERIFIED)
    login(client, dpo_a)
    # Compelling grounds answer an objection only (DSR-11): offered here, not for access.
    assert 'value="refused_compelling_grounds"' in _body(client.get(f"/dsr/{req.pk}/"))
    access = make_request(org_a, ana, type="access", state=State.VERIFIED)
    assert 'value="refused_compelling_grounds"' not in _body(client.get(f"/dsr/{access.pk}/"))
    assert client.post(f"/dsr/{req.pk}/decide/", {"decision": "granted"}).status_code == 302
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert 'id="action-execute"' in html and 'name="objection"' in html
    assert 'id="action-decide"' not in html
    response = client.post(f"/dsr/{req.pk}/execute/", {"objection": "direct_marketing"})
    assert response.status_code == 302, _body(response)
    req.refresh_from_db()
    assert req.state == State.EXECUTED and req.result["objection"] == "direct_marketing"
    assert client.post(f"/dsr/{req.pk}/close/", {"note": "done"}).status_code == 302
    req.refresh_from_db()
    assert req.state == State.CLOSED
    pack = req.artifacts.get(kind=ArtifactKind.EVIDENCE_PACK)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert f"/dsr/{req.pk}/evidence/{pack.pk}/" in html
    download = client.get(f"/dsr/{req.pk}/evidence/{pack.pk}/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert b"".join(download.streaming_content)[:2] == b"PK"
    # Only an access decision can be complained about (DSR-13): no complaint form here.
    assert 'id="action-complaint"' not in html
    access = make_request(org_a, ana, type="access", state=State.DECIDED)
    html = _body(client.get(f"/dsr/{access.pk}/"))  # decided: a complaint may follow
    assert 'id="action-complaint"' in html
    response = client.post(
        f"/dsr/{access.pk}/complaint/", {"details": "You left out my message history."}
    )
    complaint = DataSubjectRequest.objects.get(complaint_of=access)
    assert response["Location"] == f"/dsr/{complaint.pk}/"


@pytest.mark.obligation("DSR-14")
def test_a_letter_notice_is_shown_and_marked_sent(client, org_a, dpo_a, ana):
    req = dsr_receive(
        organisation=org_a,
        type="access",
        channel="letter",
        subject={"contact": ana.pk},
        original=SimpleUploadedFile("letter.pdf", b"%PDF letter", "application/pdf"),
    )
    notice = req.notices.get()
    assert notice.status == NoticeStatus.STAFF_TO_SEND
    login(client, dpo_a)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert "Mark as sent" in html and req.reference in html.split('class="letter"')[1]
    attachment = req.attachments.get(kind=AttachmentKind.ORIGINAL)
    download = client.get(f"/dsr/{req.pk}/attachments/{attachment.pk}/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"%PDF letter"
    assert (
        AccessLogEntry.objects.for_organisation(org_a)
        .filter(
            subject_type="dsr_request", action="download", what=[f"dsr_attachment:{attachment.pk}"]
        )
        .exists()
    )
    assert client.post(f"/dsr/{req.pk}/notices/{notice.pk}/sent/").status_code == 302
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.STAFF_SENT and notice.sent_at is not None
    assert "Mark as sent" not in _body(client.get(f"/dsr/{req.pk}/"))


@pytest.mark.obligation("DSR-2")
def test_platform_dpo_forwards_a_request_to_the_clinic(client, org_a, platform_dpo, mailoutbox):
    req = dsr_receive(
        organisation=None,
        type="access",
        channel="form",
        subject={"email": "ana@example.test"},
        subject_kind="visitor",
    )
    login(client, platform_dpo)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert 'id="action-forward"' in html
    response = client.post(f"/dsr/{req.pk}/forward/", {"organisation": org_a.pk})
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.state == State.FORWARDED
    copy = DataSubjectRequest.objects.get(forwarded_from=req)
    assert copy.organisation_id == org_a.pk and copy.received_at == req.received_at


# --- staff entry (DSR-1) --------------------------------------------------------------------------


@pytest.mark.obligation("DSR-1")
@time_machine.travel(NOON, tick=False)
def test_staff_entry_records_a_letter_with_its_original(client, org_a, dpo_a, ana):
    login(client, dpo_a)
    form = _body(client.get("/dsr/new/"))
    assert 'value="2026-11-25"' in form  # received on: today by default
    data = {
        "type": "erasure",
        "channel": "letter",
        "received_date": "2026-11-20",
        "received_time": "09:30",
        "name": "Ana Novak",
        "external_id": "K-1",
        "language": "sl",
        "reply_channel": "",
    }
    response = client.post("/dsr/new/", data)
    assert response.status_code == 400
    assert "Attach the letter or e-mail" in _body(response)
    assert not DataSubjectRequest.objects.exists()
    data["original"] = SimpleUploadedFile("scan.pdf", b"%PDF scan", "application/pdf")
    response = client.post("/dsr/new/", data)
    req = DataSubjectRequest.objects.get()
    assert response["Location"] == f"/dsr/{req.pk}/"
    assert req.organisation_id == org_a.pk and req.channel == "letter" and req.type == "erasure"
    assert timezone.localtime(req.received_at).strftime("%Y-%m-%d %H:%M") == "2026-11-20 09:30"
    assert req.due_on == dt.date(2026, 12, 20)
    assert req.contact_id == ana.pk  # the customer number matched one contact
    assert req.created_by_id == dpo_a.pk and req.reply_channel == "letter"
    original = req.attachments.get(kind=AttachmentKind.ORIGINAL)
    assert original.size == len(b"%PDF scan")


@pytest.mark.obligation("DSR-1")
@time_machine.travel(NOON, tick=False)  # "today at 08:00" is then in the past, at any hour
def test_staff_entry_shows_the_services_errors_at_the_field(client, org_a, dpo_a):
    login(client, dpo_a)
    response = client.post(
        "/dsr/new/",
        {
            "type": "access",
            "channel": "phone",
            "received_date": timezone.localdate().isoformat(),
            "received_time": "08:00",
            "phone": "not a number",
            "language": "sl",
        },
    )
    assert response.status_code == 400
    assert re.search(r'id="id_phone-error-1">.*is not a phone number', _body(response))
    assert not DataSubjectRequest.objects.exists()


@pytest.mark.obligation("DSR-3")
def test_code_send_needs_a_confirmed_contact_first(client, org_a, dpo_a, ana):
    req = make_request(org_a, None, state=State.RECEIVED, subject_email="who@example.test")
    login(client, dpo_a)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert 'id="action-code-send"' not in html
    response = client.post(f"/dsr/{req.pk}/code/send/", {"channel": "email"}, follow=True)
    assert "Confirm which contact the request is about first" in _body(response)
    assert not req.codes.exists()
    with pytest.raises(DsrConflict):  # the service refuses the same way
        dsr_code_send(req)


@pytest.mark.obligation("DSR-8")
def test_rectification_rows_and_a_statement_are_carried_out(client, org_a, dpo_a, ana):
    req = make_request(org_a, ana, type="rectification", state=State.DECIDED)
    login(client, dpo_a)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert 'name="field_1"' in html and 'name="value_4"' in html and 'name="statement"' in html
    # A value without its field is refused at that row, and nothing is changed.
    response = client.post(f"/dsr/{req.pk}/execute/", {"value_1": "+38640111222"})
    assert response.status_code == 400
    assert re.search(r'id="id_field_1-error-1">Choose which field', _body(response))
    response = client.post(
        f"/dsr/{req.pk}/execute/",
        {
            "field_1": "phone",
            "value_1": "040 111 222",
            "statement": "My surname was misspelt on the last letter you sent.",
        },
    )
    assert response.status_code == 302, _body(response)
    ana.refresh_from_db()
    req.refresh_from_db()
    assert ana.phone == "+38640111222"
    assert req.state == State.EXECUTED
    assert req.result["fields_changed"] == ["phone"] and req.result["statement_added"] is True


@pytest.mark.obligation("DSR-4")
def test_the_queue_reads_a_fixed_number_of_queries(
    client, org_a, dpo_a, django_assert_max_num_queries
):
    login(client, dpo_a)
    for _n in range(3):
        make_request(org_a, state=State.RECEIVED, type="access")
    client.get("/dsr/")  # the session's first write is not the queue's
    with django_assert_max_num_queries(20) as few:
        client.get("/dsr/")
    for _n in range(30):
        make_request(org_a, state=State.RECEIVED, type="erasure")
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        html = _body(client.get("/dsr/"))
    assert len(_queue_rows(html)) == 33
    assert len(many.captured_queries) == len(few.captured_queries)


@pytest.mark.obligation("DSR-4")
@time_machine.travel(NOON, tick=False)
def test_the_queue_in_slovenian(client, org_a, dpo_a):
    _received(org_a, 40)
    login(client, dpo_a)
    client.post("/language/", {"language": "sl", "next": "/dsr/"})
    html = _body(client.get("/dsr/"))
    assert "Zahteve posameznikov" in html and "zamuda 9 dni" in html
    assert "Samo odprte" in html and "Prejeto" in html


@pytest.mark.obligation("DSR-2", "DSR-14")
def test_platform_dpo_carries_out_a_visitors_request_by_hand(client, platform_dpo, mailoutbox):
    req = make_request(
        None, state=State.DECIDED, subject_kind="visitor", subject_email="v@example.test"
    )
    login(client, platform_dpo)
    html = _body(client.get(f"/dsr/{req.pk}/"))
    assert 'id="action-execute"' in html and 'name="note"' in html
    response = client.post(f"/dsr/{req.pk}/execute/", {"note": "done"})
    assert response.status_code == 400
    assert re.search(r'id="id_note-error-1">Say what was done', _body(response))
    req.refresh_from_db()
    assert req.state == State.DECIDED
    note = "Searched the web server logs (30 days): no entries for this address."
    assert client.post(f"/dsr/{req.pk}/execute/", {"note": note}).status_code == 302
    req.refresh_from_db()
    assert req.state == State.EXECUTED and req.result == {"manual": True}
    assert req.steps.get(kind=StepKind.EXECUTED).note == note
    assert note in _body(client.get(f"/dsr/{req.pk}/"))
    assert client.post(f"/dsr/{req.pk}/close/", {}).status_code == 302
    req.refresh_from_db()
    assert req.state == State.CLOSED


@pytest.mark.obligation("DSR-1", "DSR-2")
# Noon: received "today at 08:15" must not be in the future (before 08:15 in Ljubljana it was).
@time_machine.travel(NOON, tick=False)
def test_platform_dpo_records_a_letter_into_the_platform_queue(client, platform_dpo):
    login(client, platform_dpo)
    form = _body(client.get("/dsr/new/"))
    assert 'name="subject_kind"' in form and 'name="contact"' not in form
    response = client.post(
        "/dsr/new/",
        {
            "type": "access",
            "channel": "letter",
            "received_date": timezone.localdate().isoformat(),
            "received_time": "08:15",
            "subject_kind": "customer_contact",
            "name": "Mojca Kos",
            "email": "mojca@customer.example",
            "language": "sl",
            "original": SimpleUploadedFile("letter.pdf", b"%PDF", "application/pdf"),
        },
    )
    req = DataSubjectRequest.objects.get()
    assert response["Location"] == f"/dsr/{req.pk}/"
    assert req.organisation_id is None and req.subject_kind == "customer_contact"
    assert req.channel == "letter" and req.attachments.count() == 1


@pytest.mark.obligation("DSR-6")
def test_a_letter_answer_lets_the_dpo_download_the_copy_to_enclose_access_logged(
    client, org_a, dpo_a
):
    from carely.audit.models import AccessLogEntry
    from dsr.services import dsr_decide, dsr_execute
    from tests.consent.conftest import make_contact
    from tests.dsr.factories import make_request

    contact = make_contact(org_a, first_name="Lea", email="lea@example.test")
    by_letter = make_request(org_a, contact, reply_channel="letter")
    by_mail = make_request(org_a, contact)
    for request in (by_letter, by_mail):
        dsr_decide(request, decision="granted")
        dsr_execute(request)
    login(client, dpo_a)
    letter_zip = by_letter.artifacts.get(kind="access_zip")
    mail_zip = by_mail.artifacts.get(kind="access_zip")
    response = client.get(f"/dsr/{by_letter.pk}/evidence/{letter_zip.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert AccessLogEntry.objects.filter(subject_type="contact", subject_id=contact.pk).exists()
    assert client.get(f"/dsr/{by_mail.pk}/evidence/{mail_zip.pk}/").status_code == 404
