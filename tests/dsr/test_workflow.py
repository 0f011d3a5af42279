"""The request workflow through its services: intake and matching (DSR-1, DSR-2), identity
(DSR-3), decisions (DSR-5, DSR-11), the record (DSR-14)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from carely.audit.models import AuditEvent
from dsr.models import DataSubjectRequest, State
from dsr.services import (
    CODE_MAX_ATTEMPTS,
    DsrConflict,
    DsrInvalid,
    dsr_candidates,
    dsr_close,
    dsr_code_check,
    dsr_code_send,
    dsr_confirm_subject,
    dsr_decide,
    dsr_earlier_requests,
    dsr_forward,
    dsr_receive,
    dsr_request_info,
)
from messaging.models import Message
from tests.dsr.factories import make_request


def _code_from_outbox(contact) -> str:
    message = Message.objects.filter(contact=contact, purpose="data_subject_request").latest("pk")
    return next(word.strip(".") for word in message.body.split() if word.strip(".").isdigit())


@pytest.mark.obligation("DSR-1")
@pytest.mark.parametrize(
    "kind",
    ["access", "rectification", "erasure", "restriction", "portability", "objection", "withdrawal"],
)
def test_every_type_is_received_with_time_and_channel(org_a, ana, kind):
    request = dsr_receive(
        organisation=org_a, type=kind, channel="letter", subject={"external_id": "K-1"}
    )
    assert request.type == kind
    assert request.channel == "letter"
    assert request.received_at is not None
    assert request.contact == ana  # matched by the external id's blind index
    assert request.state == State.AWAITING_VERIFICATION
    assert request.steps.first().kind == "received"


@pytest.mark.obligation("DSR-1")
def test_bad_input_names_each_field(org_a):
    with pytest.raises(DsrInvalid) as caught:
        dsr_receive(
            organisation=org_a,
            type="delete-me",
            channel="pigeon",
            subject={"email": "not an address", "phone": "12"},
        )
    errors = caught.value.errors
    assert set(errors) >= {"type", "channel", "subject.email", "subject.phone"}
    assert "country code" in errors["subject.phone"][0]
    assert DataSubjectRequest.objects.count() == 0


@pytest.mark.obligation("DSR-3")
def test_several_matching_contacts_are_shown_never_merged(org_a, make_contact_fn):
    mother = make_contact_fn(org_a, first_name="Mira", phone="+38640111222", email="mira@x.test")
    son = make_contact_fn(org_a, first_name="Tim", phone="+38640111222", email="tim@x.test")
    request = dsr_receive(
        organisation=org_a, type="access", channel="phone", subject={"phone": "040 111 222"}
    )
    assert request.contact is None
    assert request.state == State.RECEIVED
    assert {c.pk for c in dsr_candidates(request)} == {mother.pk, son.pk}
    with pytest.raises(DsrConflict, match="Confirm which contact"):
        dsr_code_send(request)
    dsr_confirm_subject(request, contact=son)
    request.refresh_from_db()
    assert request.contact == son
    assert request.steps.filter(kind="subject_confirmed", data__contact_id=son.pk).exists()


@pytest.fixture
def make_contact_fn():
    from tests.consent.conftest import make_contact

    return make_contact


@pytest.mark.obligation("DSR-3")
def test_code_goes_only_to_the_address_on_file(org_a, ana, mailoutbox):
    # The request gives a NEW e-mail address and Ana's phone: matched by phone, the code goes to
    # the e-mail Ana has on file, never to the address in the request.
    request = dsr_receive(
        organisation=org_a,
        type="access",
        channel="form",
        subject={"email": "new-address@elsewhere.test", "phone": "+38641123456"},
    )
    assert request.contact == ana
    dsr_code_send(request, channel="email")
    codes = Message.objects.filter(contact=ana, purpose="data_subject_request")
    assert codes.exists()
    assert {m.to_address for m in codes} <= {"ana@example.test"}
    assert all(m.to_address != "new-address@elsewhere.test" for m in Message.objects.all())
    assert all("new-address@elsewhere.test" not in m.to for m in mailoutbox)
    code = _code_from_outbox(ana)
    assert dsr_code_check(request, code=code)
    request.refresh_from_db()
    assert request.state == State.VERIFIED
    assert request.verification_method == "code"


@pytest.mark.obligation("DSR-3")
def test_code_attempts_are_limited_and_a_new_code_replaces_the_old(org_a, ana):
    request = make_request(org_a, ana, state=State.AWAITING_VERIFICATION, verified_at=None)
    dsr_code_send(request)
    first = _code_from_outbox(ana)
    wrong = "000000" if first != "000000" else "111111"
    for _ in range(CODE_MAX_ATTEMPTS):
        assert dsr_code_check(request, code=wrong) is False
    with pytest.raises(DsrConflict, match="wrong attempts"):
        dsr_code_check(request, code=first)
    dsr_code_send(request)
    second = _code_from_outbox(ana)
    if second != first:  # the old code no longer works (1 in a million it is the same)
        assert dsr_code_check(request, code=first) is False
    assert dsr_code_check(request, code=second)


@pytest.mark.obligation("DSR-3")
def test_code_expires(org_a, ana, time_machine):
    import datetime as dt

    from django.utils import timezone

    request = make_request(org_a, ana, state=State.AWAITING_VERIFICATION, verified_at=None)
    time_machine.move_to(timezone.now(), tick=False)
    dsr_code_send(request)
    code = _code_from_outbox(ana)
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=31), tick=False)
    with pytest.raises(DsrConflict, match="expired"):
        dsr_code_check(request, code=code)


@pytest.mark.obligation("DSR-3")
def test_refused_for_identity_only_after_trying_to_identify(org_a):
    request = dsr_receive(
        organisation=org_a, type="erasure", channel="email", subject={"email": "who@nowhere.test"}
    )
    with pytest.raises(DsrConflict, match="cannot be identified"):
        dsr_decide(request, decision="refused_identity", reason="We hold no such address.")
    dsr_request_info(
        request, what="Please send the phone number you gave the clinic.", identity=True
    )
    dsr_decide(request, decision="refused_identity", reason="No answer and no match on file.")
    request.refresh_from_db()
    assert request.decision == "refused_identity"
    assert request.decision_reason == "No answer and no match on file."


@pytest.mark.obligation("DSR-3")
def test_granting_needs_a_verified_subject(org_a, ana):
    request = make_request(org_a, ana, state=State.AWAITING_VERIFICATION, verified_at=None)
    with pytest.raises(DsrConflict, match="Verify the subject's identity first"):
        dsr_decide(request, decision="granted")


@pytest.mark.obligation("DSR-5")
def test_refusal_as_excessive_shows_earlier_requests_and_tells_the_right_to_complain(org_a, ana):
    earlier = [make_request(org_a, ana, state=State.CLOSED) for _ in range(3)]
    request = make_request(org_a, ana)
    assert {r.pk for r in dsr_earlier_requests(request)} == {r.pk for r in earlier}
    dsr_decide(
        request,
        decision="refused_excessive",
        reason="The fourth identical access request this month.",
    )
    notice = request.notices.get(kind="decision")
    message = Message.objects.get(pk=notice.message_id)
    assert "Informacijski pooblaščenec" in message.body
    assert "Dunajska cesta 22" in message.body
    assert "fourth identical" in message.body


@pytest.mark.obligation("DSR-5")
def test_a_fee_needs_an_amount_and_a_reason(org_a, ana):
    request = make_request(org_a, ana)
    with pytest.raises(DsrInvalid) as caught:
        dsr_decide(request, decision="fee")
    assert set(caught.value.errors) == {"reason", "fee_cents"}


@pytest.mark.obligation("DSR-11")
def test_an_objection_to_direct_marketing_cannot_be_refused_on_compelling_grounds(org_a, ana):
    request = make_request(org_a, ana, type="objection")
    with pytest.raises(DsrConflict, match="always upheld"):
        dsr_decide(
            request,
            decision="refused_compelling_grounds",
            reason="We want to keep sending offers.",
        )


@pytest.mark.obligation("DSR-2")
def test_platform_request_about_a_patient_is_forwarded_and_the_subject_told(org_a, ana, mailoutbox):
    request = dsr_receive(
        organisation=None,
        type="access",
        channel="email",
        subject={"email": "ana@example.test", "name": "Ana"},
        subject_kind="visitor",
    )
    assert request.platform_queue
    copy = dsr_forward(request, organisation=org_a)
    request.refresh_from_db()
    assert request.state == State.FORWARDED
    assert copy.organisation == org_a
    assert copy.channel == "forwarded"
    assert copy.forwarded_from == request
    assert copy.received_at == request.received_at  # the subject's clock does not restart
    assert copy.due_on == request.due_on
    assert copy.contact == ana
    step = request.steps.get(kind="forwarded")
    assert step.data["forwarded_request_id"] == copy.pk
    notice = request.notices.get(kind="forwarded")
    assert notice.status == "sent"
    told = [m for m in mailoutbox if "ana@example.test" in m.to and "Clinic A" in m.body]
    assert told, "the subject was told where the request went"
    assert AuditEvent.objects.filter(action="dsr.forwarded", organisation=None).exists()


@pytest.mark.obligation("DSR-14")
def test_every_step_is_recorded_and_mirrored_to_the_audit_log(org_a, ana):
    request = dsr_receive(
        organisation=org_a, type="access", channel="email", subject={"email": "ana@example.test"}
    )
    dsr_request_info(request, what="Which years of records do you mean?", identity=False)
    steps = list(request.steps.values_list("kind", flat=True))
    assert steps[:2] == ["received", "notice_sent"]
    assert "info_requested" in steps
    audit = set(
        AuditEvent.objects.filter(
            object_type="dsr.DataSubjectRequest", object_id=str(request.pk)
        ).values_list("action", flat=True)
    )
    assert {f"dsr.{kind}" for kind in steps} == audit
    from carely.audit.models import AppendOnlyError

    with pytest.raises(AppendOnlyError):
        request.steps.update(kind="note")


@pytest.mark.obligation("DSR-14")
def test_closed_request_has_an_evidence_pack_without_personal_data(org_a, ana):
    request = make_request(org_a, ana, type="objection")
    dsr_decide(request, decision="granted")
    from dsr.services import dsr_execute

    dsr_execute(request, params={"objection": "direct_marketing"})
    dsr_close(request, note="Done by phone with Ana Novak.")
    request.refresh_from_db()
    assert request.state == State.CLOSED
    pack = request.artifacts.get(kind="evidence_pack")
    data = pack.stored_file.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        body = archive.read("evidence.json").decode()
        html = archive.read("evidence.html").decode()
    assert names == {"evidence.json", "evidence.html"}
    document = json.loads(body)
    kinds = [s["kind"] for s in document["steps"]]
    assert kinds[0] == "received" or "decided" in kinds
    assert {"decided", "executed", "closed"} <= set(kinds)
    assert document["decision"]["decision"] == "granted"
    assert document["notices"]
    for secret in ("ana@example.test", "+38641123456", "41123456", "Ana", "Novak", "K-1"):
        assert secret not in body
        assert secret not in html


@pytest.mark.obligation("DSR-9")
def test_the_platform_keeps_no_copy_of_a_forwarded_subject(org_a, ana):
    request = dsr_receive(
        organisation=None,
        type="erasure",
        channel="email",
        subject={"email": "ana@example.test", "name": "Ana Novak"},
        subject_kind="visitor",
    )
    dsr_forward(request, organisation=org_a)
    request.refresh_from_db()
    assert request.subject_name == ""
    assert request.subject_email.startswith("kh1:")
    assert request.subject_email_bidx  # a repeated request can still be recognised
