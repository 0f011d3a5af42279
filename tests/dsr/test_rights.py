"""Carrying out rectification, restriction, objection and withdrawal through their own services
(DSR-8, DSR-10, DSR-11, CON-2), and the subject told of the result in their language."""

from __future__ import annotations

import pytest

from consent.eligibility import eligibility_decide
from consent.models import ConsentEntry
from contacts.selectors import contact_history
from dsr.models import State
from dsr.services import DsrInvalid, dsr_decide, dsr_execute
from messaging.models import Message
from tests.consent.conftest import record
from tests.dsr.factories import make_request


def _granted(org, contact, kind, **fields):
    request = make_request(org, contact, type=kind, **fields)
    dsr_decide(request, decision="granted")
    return request


@pytest.mark.obligation("DSR-8")
def test_rectification_changes_the_contact_with_history_and_a_statement(org_a, ana):
    request = _granted(org_a, ana, "rectification")
    with pytest.raises(DsrInvalid):
        dsr_execute(request, params={"changes": {"phone": "not a phone"}})
    request.refresh_from_db()
    assert request.state == State.DECIDED  # nothing half done
    dsr_execute(
        request,
        params={
            "changes": {"phone": "+38640999888", "last_name": "Kovač"},
            "statement": "My surname changed on marriage in 2025.",
        },
    )
    ana.refresh_from_db()
    assert ana.phone == "+38640999888"
    history = contact_history(contact=ana)
    rectified = [e for e in history if e.kind == "rectification"]
    assert {f.name for f in rectified[-1].fields} == {"phone", "last_name"}
    assert any(e.kind == "supplementary_statement" for e in history)
    request.refresh_from_db()
    assert request.state == State.EXECUTED
    assert request.result["statement_added"] is True
    assert sorted(request.result["fields_changed"]) == ["last_name", "phone"]


@pytest.mark.obligation("DSR-10")
def test_restriction_goes_through_the_contacts_service(org_a, ana):
    request = _granted(org_a, ana, "restriction")
    dsr_execute(request, params={"reason": "Accuracy contested by the patient."})
    ana.refresh_from_db()
    assert ana.is_restricted
    # The result still reaches a restricted contact (legal obligation, Art. 18(3)).
    notice = request.notices.get(kind="result")
    assert notice.status == "queued"
    assert Message.objects.get(pk=notice.message_id).legal_basis == "legal_obligation"


@pytest.mark.obligation("DSR-11")
def test_objection_to_direct_marketing_stops_marketing(org_a, ana):
    record(ana, channel="all")
    request = _granted(org_a, ana, "objection")
    dsr_execute(request, params={"objection": "direct_marketing"})
    decision = eligibility_decide(
        organisation=org_a,
        contact_ids=[ana.pk],
        kind="marketing",
        channel="sms",
        purpose="marketing",
    )[ana.pk]
    assert not decision.allowed
    assert "objection" in decision.reasons


@pytest.mark.obligation("CON-2")
def test_withdrawal_request_withdraws_every_purpose(org_a, ana):
    record(ana, channel="all")
    request = _granted(org_a, ana, "withdrawal")
    dsr_execute(request)
    latest = ConsentEntry.objects.filter(contact=ana).order_by("-recorded_at", "-pk").first()
    assert latest.status == "withdrawn"
    assert request.result["purposes_withdrawn"] == 1


@pytest.mark.obligation("DSR-4")
def test_the_result_is_told_in_the_subjects_language(org_a, ana):
    request = _granted(org_a, ana, "withdrawal", language="en")
    dsr_execute(request)
    message = Message.objects.get(pk=request.notices.get(kind="result").message_id)
    assert message.subject.startswith("Request DSR-")
    assert "Information Commissioner" in message.body
    request_sl = _granted(org_a, ana, "withdrawal", language="sl")
    dsr_execute(request_sl)
    message_sl = Message.objects.get(pk=request_sl.notices.get(kind="result").message_id)
    assert "izvršena" in message_sl.subject


@pytest.mark.obligation("CON-2")
def test_withdrawal_of_an_unknown_purpose_names_it_and_changes_nothing(org_a, ana):
    record(ana, channel="all")
    request = _granted(org_a, ana, "withdrawal")
    with pytest.raises(DsrInvalid) as caught:
        dsr_execute(request, params={"purposes": ["marketing", "horoscopes"]})
    assert "horoscopes" in caught.value.errors["purposes"][0]
    request.refresh_from_db()
    assert request.state == State.DECIDED
    latest = ConsentEntry.objects.filter(contact=ana).order_by("-recorded_at", "-pk").first()
    assert latest.status == "given"  # the marketing withdrawal rolled back with the rest
