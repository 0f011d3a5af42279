"""DSR-12: a rectification, erasure or restriction is passed on to every recipient the data was
disclosed to, found in the records (messages a provider accepted, API reads, pushes to another
controller), and each notice is recorded."""

from __future__ import annotations

import json

import pytest
from werkzeug import Response

from carely.audit.access_log import access_log_record
from carely.audit.context import Actor
from dsr.erasure import erasure_execute
from dsr.models import PortabilityPush, RecipientNotification, State, StepKind
from dsr.recipients import recipients_collect, recipients_notify
from tests.consent.conftest import make_contact
from tests.dsr.factories import make_request
from tests.dsr.test_erasure import (  # noqa: F401  (media is an autouse fixture)
    EMAIL,
    FIRST,
    LAST,
    PHONE,
    media,
    subject_with_history,
)

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("DSR-12")]

ACTOR = Actor.system("dsr_recipients_test")


def _pushed(org, contact, url, *, status=200):
    earlier = make_request(org, contact, type="portability", state=State.CLOSED)
    PortabilityPush.objects.create(
        organisation=org, request=earlier, url=url, status_code=status, bytes_sent=1234
    )
    return earlier


def test_erasure_tells_processors_api_clients_and_controllers(
    org_a, admin_a, httpserver, mailoutbox, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a)
    earlier = _pushed(org_a, history.contact, httpserver.url_for("/gdpr/notices"))
    httpserver.expect_oneshot_request("/gdpr/notices", method="POST").respond_with_json(
        {"ok": True}, status=202
    )

    recipients = recipients_collect(history.request)  # before: the records still link
    with django_capture_on_commit_callbacks(execute=True):
        erasure_execute(history.request, actor=ACTOR)
    notified = recipients_notify(history.request, recipients, action="erasure", actor=ACTOR)

    rows = {n.recipient: n for n in notified}
    host = httpserver.host  # the push went to the loopback server, and is named by its host
    assert set(rows) == {"infobip", "ses", f"api_key:{history.api_key_id}", f"push:{host}"}
    assert all(n.outcome == "notified" and n.action == "erasure" for n in notified)
    assert rows["infobip"].recipient_kind == "processor" and rows["infobip"].disclosures == 1
    assert rows["ses"].disclosures == 1
    api = rows[f"api_key:{history.api_key_id}"]
    assert api.recipient_kind == "api_client" and api.disclosures == 1  # staff reads don't count
    push = next(n for n in notified if n.recipient_kind == "controller")
    assert push.disclosures == 1 and push.detail["status"] == 202
    assert RecipientNotification.objects.filter(request=history.request).count() == 4
    steps = history.request.steps.filter(kind=StepKind.RECIPIENT_NOTIFIED)
    assert sorted(s.data["notification_id"] for s in steps) == sorted(n.pk for n in notified)
    assert {s.data.get("recipient") for s in steps} == {
        "infobip",
        "ses",
        f"api_key:{history.api_key_id}",
        None,  # the controller's host is on the notification row, not in the audit trail
    }

    # The other controller got the notice, under the reference it received the data with.
    (sent, _response) = httpserver.log[0]
    assert json.loads(sent.data) == {
        "notice": "erasure",
        "reference": earlier.reference,
        "request": history.request.reference,
    }

    # Mails: each processor at its privacy address with only its own message ids; the clinic's
    # admins about the key. None carries the subject's name, address or number.
    by_to = {tuple(m.to): m for m in mailoutbox}
    infobip = by_to[("privacy@infobip.com",)]
    assert "ib-7001" in infobip.body and "ses-0100" not in infobip.body
    assert history.request.reference in infobip.subject
    assert "ses-0100" in by_to[("aws-privacy@amazon.com",)].body
    admins = by_to[(admin_a.email,)]
    assert "Practice system" in admins.body and f"id {history.api_key_id}" in admins.body
    assert "erasure" in admins.subject
    for mail in mailoutbox:
        text = (mail.subject + mail.body).lower()
        for value in (FIRST, LAST, EMAIL, PHONE, PHONE.lstrip("+")):
            assert value.lower() not in text


def test_processor_addresses_come_from_settings(org_a, settings, mailoutbox):
    settings.DSR_PROCESSOR_CONTACTS = {"infobip": "dpa@infobip.example", "ses": "dpa@aws.example"}
    history = subject_with_history(org_a)
    recipients = [r for r in recipients_collect(history.request) if r.kind == "processor"]
    notified = recipients_notify(history.request, recipients, action="rectification", actor=ACTOR)
    assert {tuple(m.to) for m in mailoutbox} == {("dpa@infobip.example",), ("dpa@aws.example",)}
    assert {n.detail["to"] for n in notified} == {"dpa@infobip.example", "dpa@aws.example"}
    assert all("correct" in m.body for m in mailoutbox)


def test_a_subject_disclosed_to_no_one_is_neither_notified_nor_recorded(org_a, staff_a, mailoutbox):
    contact = make_contact(org_a, first_name="Eva", email="eva@example.test")
    # Staff reading the record is the controller itself, not a recipient.
    access_log_record(
        organisation=org_a,
        subject_type="contact",
        subject_id=contact.pk,
        what=["email"],
        actor=Actor.user(staff_a.pk),
    )
    # A push the other controller refused disclosed nothing.
    _pushed(org_a, contact, "https://other.example/import", status=500)
    request = make_request(org_a, contact, type="restriction", state=State.DECIDED)

    recipients = recipients_collect(request)
    notified = recipients_notify(request, recipients, action="restriction", actor=ACTOR)

    assert recipients == [] and notified == []
    assert not RecipientNotification.objects.filter(request=request).exists()
    assert not request.steps.filter(kind=StepKind.RECIPIENT_NOTIFIED).exists()
    assert mailoutbox == []


def test_another_organisations_disclosures_do_not_count(org_a, org_b, mailoutbox):
    contact = make_contact(org_a, first_name="Eva", email="eva@example.test")
    request = make_request(org_a, contact, type="erasure", state=State.DECIDED)
    # The same contact id read in another organisation's log is another organisation's subject.
    access_log_record(
        organisation=org_b,
        subject_type="contact",
        subject_id=contact.pk,
        what=["email"],
        actor=Actor.api_key(999),
    )
    assert recipients_collect(request) == []


def test_a_controller_that_refuses_or_cannot_be_reached_is_recorded_as_failed(
    org_a, httpserver, mailoutbox
):
    contact = make_contact(org_a, first_name="Eva", email="eva@example.test")
    _pushed(org_a, contact, httpserver.url_for("/refuses"))
    _pushed(org_a, contact, "http://127.0.0.1:9/closed")  # discard port: nothing listens
    httpserver.expect_request("/refuses", method="POST").respond_with_response(
        Response("no", status=500)
    )
    request = make_request(org_a, contact, type="erasure", state=State.DECIDED)

    notified = recipients_notify(
        request, recipients_collect(request), action="erasure", actor=ACTOR
    )

    outcomes = sorted((n.outcome, n.detail.get("status", 0), "error" in n.detail) for n in notified)
    assert outcomes == [("failed", 0, True), ("failed", 500, False)]
    steps = request.steps.filter(kind=StepKind.RECIPIENT_NOTIFIED)
    assert sorted(s.data["outcome"] for s in steps) == ["failed", "failed"]


def test_api_reads_without_an_admin_to_tell_are_recorded_as_failed(org_a, mailoutbox):
    contact = make_contact(org_a, first_name="Eva", email="eva@example.test")
    access_log_record(
        organisation=org_a,
        subject_type="contact",
        subject_id=contact.pk,
        what=["email"],
        actor=Actor.api_key(41),
    )
    request = make_request(org_a, contact, type="erasure", state=State.DECIDED)
    (notification,) = recipients_notify(
        request, recipients_collect(request), action="erasure", actor=ACTOR
    )
    assert notification.recipient == "api_key:41" and notification.outcome == "failed"
    assert notification.detail["error"] == "no_admin_address"
    assert mailoutbox == []


def test_an_unknown_action_is_refused(org_a):
    contact = make_contact(org_a, first_name="Eva")
    request = make_request(org_a, contact, type="erasure", state=State.DECIDED)
    with pytest.raises(ValueError, match="action must be one of"):
        recipients_notify(request, [], action="deletion", actor=ACTOR)
