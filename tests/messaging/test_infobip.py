"""The Infobip adapters against a loopback HTTP server speaking Infobip's documented JSON
(pytest-httpserver; INTEGRATIONS.md section 1): request shapes, auth, 429 with Retry-After, and
a worker killed between the provider's answer and our record (MSG-1, MSG-8, MSG-9)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.utils import timezone
from werkzeug import Request, Response

from messaging import dispatch
from messaging.ratelimit import limiter
from messaging.reconcile import messages_reconcile
from messaging.services import message_enqueue, template_save, whatsapp_inbound_note

pytestmark = pytest.mark.django_db

BULK = "messaging-bulk"
KEY = "test-app-key"
DAYTIME = dt.datetime(2025, 6, 10, 8, 0, tzinfo=dt.UTC)
PENDING = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}


class FakeInfobip:
    """Keeps what it accepted, so its logs endpoint can answer for it like Infobip's does."""

    def __init__(self) -> None:
        self.accepted: dict[str, dict] = {}
        self.sms_posts: list[dict] = []
        self.errors: list[tuple[int, dict, dict]] = []  # (status, body, headers), one per POST

    def sms(self, request: Request) -> Response:
        assert request.headers["Authorization"] == f"App {KEY}"
        if self.errors:
            status, body, headers = self.errors.pop(0)
            return Response(json.dumps(body), status, headers, content_type="application/json")
        payload = request.get_json()
        self.sms_posts.append(payload)
        answer = []
        for message in payload["messages"]:
            for destination in message["destinations"]:
                self.accepted[destination["messageId"]] = destination
                answer.append(
                    {
                        "messageId": destination["messageId"],
                        "status": PENDING,
                        "destination": destination["to"],
                        "details": {"messageCount": 1},
                    }
                )
        return Response(
            json.dumps({"bulkId": "b-1", "messages": answer}),
            200,
            {},
            content_type="application/json",
        )

    def logs(self, request: Request) -> Response:
        assert request.headers["Authorization"] == f"App {KEY}"
        wanted = request.args.getlist("messageId")
        results = [
            {
                "messageId": i,
                "destination": self.accepted[i]["to"],
                "status": {
                    "groupId": 3,
                    "groupName": "DELIVERED",
                    "id": 5,
                    "name": "DELIVERED_TO_HANDSET",
                },
                "messageCount": 1,
            }
            for i in wanted
            if i in self.accepted
        ]
        return Response(json.dumps({"results": results}), 200, content_type="application/json")


@pytest.fixture
def infobip(httpserver, settings):
    settings.MESSAGING_PROVIDERS = {
        "sms": "messaging.providers.infobip.InfobipSmsProvider",
        "email": "messaging.providers.infobip.InfobipEmailProvider",
        "whatsapp": "messaging.providers.infobip.InfobipWhatsAppProvider",
    }
    settings.INFOBIP_BASE_URL = httpserver.url_for("/").rstrip("/")
    settings.INFOBIP_API_KEY = KEY
    settings.MESSAGING_SMS_SENDER = "Klinika"
    settings.MESSAGING_WHATSAPP_SENDER = "38640111222"
    settings.DEFAULT_FROM_EMAIL = "Klinika <info@klinika.example.test>"
    server = FakeInfobip()
    httpserver.expect_request("/sms/3/messages", method="POST").respond_with_handler(server.sms)
    httpserver.expect_request("/sms/3/logs", method="GET").respond_with_handler(server.logs)
    limiter.cache_clear()
    with time_machine.travel(DAYTIME, tick=True):
        yield server


def reminder(org, contact, key="staff:1", channel="sms", **kw):
    kw.setdefault("text", "Termin jutri ob 9h.")
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel=channel,
        kind="transactional",
        purpose="appointment_reminders",
        dedupe_key=key,
        **kw,
    )


@pytest.mark.obligation("MSG-1", "MSG-6")
def test_sms_goes_as_documented_many_messages_per_request(org_a, ana, bor, infobip):
    first, second = reminder(org_a, ana), reminder(org_a, bor)
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.requests == 1 and report.sent == 2
    (payload,) = infobip.sms_posts
    assert payload["options"] == {"includeSmsCountInResponse": True}
    assert payload["messages"][0] == {
        "sender": "Klinika",
        "destinations": [{"to": "38641123456", "messageId": first.our_id}],
        "content": {"text": "Termin jutri ob 9h."},
    }
    assert payload["messages"][1]["destinations"][0]["messageId"] == second.our_id
    first.refresh_from_db()
    assert first.status == "sent" and first.provider == "infobip"
    assert first.provider_message_id == first.our_id and first.parts_reported == 1
    event = first.events.get(kind="sent")
    assert event.detail["status_name"] == "PENDING_ACCEPTED" and event.source == "dispatch"


@pytest.mark.obligation("MSG-9")
def test_429_with_retry_after_over_http_is_honoured(org_a, ana, infobip):
    message = reminder(org_a, ana)
    infobip.errors.append(
        (
            429,
            {
                "errorCode": "E429",
                "description": "Too many requests sent.",
                "action": "",
                "violations": [],
                "resources": [],
            },
            {"Retry-After": "7"},
        )
    )
    before = timezone.now()
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.retried == 1 and infobip.sms_posts == []
    message.refresh_from_db()
    assert message.status == "deferred" and message.due_at >= before + dt.timedelta(seconds=7)
    assert "Too many requests" in message.last_error
    # Not before the provider's time, even when the sweep runs early...
    assert dispatch.dispatch_batch(queue=BULK).claimed == 0
    with time_machine.travel(message.due_at + dt.timedelta(seconds=1), tick=False):
        limiter.cache_clear()
        assert dispatch.dispatch_batch(queue=BULK).sent == 1
    assert len(infobip.sms_posts) == 1


def test_a_bad_request_ends_the_message_with_infobips_reason(org_a, ana, infobip):
    message = reminder(org_a, ana)
    infobip.errors.append(
        (
            400,
            {
                "errorCode": "E400",
                "description": "Request cannot be processed.",
                "action": "",
                "violations": [{"property": "messages[0].sender", "violation": "invalid"}],
                "resources": [],
            },
            {},
        )
    )
    assert dispatch.dispatch_batch(queue=BULK).failed == 1
    message.refresh_from_db()
    assert message.status == "failed" and message.error_permanent
    assert "messages[0].sender: invalid" in message.last_error


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it in the worker runs."""


@pytest.mark.obligation("MSG-9")
def test_a_worker_killed_after_the_provider_accepted_causes_no_second_call(
    org_a, ana, infobip, monkeypatch, settings
):
    message = reminder(org_a, ana)

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(dispatch, "_record", killed)
    with pytest.raises(Killed):
        dispatch.dispatch_batch(queue=BULK)
    monkeypatch.undo()
    assert len(infobip.sms_posts) == 1
    message.refresh_from_db()
    assert message.status == "sending" and message.handed_at is not None
    # Another worker sees nothing to claim; the lease runs out; the reconciler asks Infobip.
    assert dispatch.dispatch_batch(queue=BULK).claimed == 0
    later = timezone.now() + dt.timedelta(seconds=settings.MESSAGING_LEASE_SECONDS + 1)
    report = messages_reconcile(now=later)
    assert report.confirmed == 1 and report.requeued == 0
    message.refresh_from_db()
    assert message.status == "delivered" and message.provider_message_id == message.our_id
    assert message.events.get(kind="delivered").source == "reconciler"
    with time_machine.travel(later + dt.timedelta(hours=1), tick=False):
        assert messages_reconcile().examined == 0
        assert dispatch.dispatch_batch(queue=BULK).claimed == 0
    assert len(infobip.sms_posts) == 1


@pytest.mark.obligation("MSG-9")
def test_a_message_the_provider_never_got_is_requeued_only_after_the_grace_period(
    org_a, ana, infobip, monkeypatch, settings
):
    message = reminder(org_a, ana)

    def killed_before_the_call(self, messages):
        raise Killed

    from messaging.providers.infobip import InfobipSmsProvider

    monkeypatch.setattr(InfobipSmsProvider, "send", killed_before_the_call)
    with pytest.raises(Killed):
        dispatch.dispatch_batch(queue=BULK)
    monkeypatch.undo()
    lease = dt.timedelta(seconds=settings.MESSAGING_LEASE_SECONDS + 1)
    grace = dt.timedelta(seconds=settings.MESSAGING_RECONCILE_GRACE_SECONDS)
    early = messages_reconcile(now=timezone.now() + lease)
    assert early.waiting == 1 and early.requeued == 0
    with time_machine.travel(timezone.now() + grace + lease, tick=False):
        late = messages_reconcile()
        assert late.requeued == 1
        message.refresh_from_db()
        assert message.status == "queued" and message.handed_at is None
        assert dispatch.dispatch_batch(queue=BULK).sent == 1
    assert len(infobip.sms_posts) == 1


@pytest.mark.obligation("MSG-1", "MSG-8")
def test_email_is_multipart_with_rfc8058_headers_on_marketing_only(
    org_a, ana, httpserver, infobip, offer_email, reminder_email
):
    received: list[dict] = []

    def email(request: Request) -> Response:
        assert request.headers["Authorization"] == f"App {KEY}"
        assert request.mimetype == "multipart/form-data"
        form = request.form.to_dict(flat=True)
        received.append(form)
        answer = {
            "bulkId": "e-1",
            "messages": [{"to": form["to"], "messageId": form["messageId"], "status": PENDING}],
        }
        return Response(json.dumps(answer), 200, content_type="application/json")

    httpserver.expect_request("/email/3/send", method="POST").respond_with_handler(email)
    marketing = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="email",
        kind="marketing",
        purpose="marketing",
        template=offer_email,
        dedupe_key="campaign:1",
    )
    transactional = reminder(
        org_a,
        ana,
        channel="email",
        text=None,
        template=reminder_email,
        variables={"when": "jutri ob 9h"},
    )
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.requests == 2 and report.sent == 2
    by_id = {form["messageId"]: form for form in received}
    sent = by_id[marketing.our_id]
    assert sent["from"] == "Klinika <info@klinika.example.test>"
    assert sent["to"] == "ana@example.test" and sent["subject"] == "Novost za Ana"
    assert "Odjava: https://pep.example.test/u/" in sent["text"]
    assert 'href="https://pep.example.test/u/' in sent["html"]
    headers = json.loads(sent["headers"])
    assert headers["List-Unsubscribe"].startswith("<https://pep.example.test/u/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = by_id[transactional.our_id]
    assert "headers" not in plain and "/u/" not in plain["text"]
    assert plain["subject"] == "Termin jutri ob 9h"


@pytest.mark.obligation("MSG-1")
def test_whatsapp_templates_and_session_text_have_the_documented_shape(
    org_a, ana, httpserver, infobip
):
    templates: list[dict] = []
    texts: list[dict] = []

    def template(request: Request) -> Response:
        payload = request.get_json()
        templates.append(payload)
        answer = {
            "bulkId": "w-1",
            "messages": [
                {"to": m["to"], "messageCount": 1, "messageId": m["messageId"], "status": PENDING}
                for m in payload["messages"]
            ],
        }
        return Response(json.dumps(answer), 200, content_type="application/json")

    def text(request: Request) -> Response:
        payload = request.get_json()
        texts.append(payload)
        answer = {
            "to": payload["to"],
            "messageCount": 1,
            "messageId": payload["messageId"],
            "status": PENDING,
        }
        return Response(json.dumps(answer), 200, content_type="application/json")

    httpserver.expect_request("/whatsapp/1/message/template", method="POST").respond_with_handler(
        template
    )
    httpserver.expect_request("/whatsapp/1/message/text", method="POST").respond_with_handler(text)
    registered = template_save(
        organisation=org_a,
        name="wa reminder",
        kind="transactional",
        channel="whatsapp",
        language="sl",
        body="Pozdravljeni {{ first_name }}, termin {{ when }}.",
        variables=["when"],
        whatsapp_template_name="appointment_reminder",
    )
    templated = reminder(
        org_a,
        ana,
        channel="whatsapp",
        text=None,
        template=registered,
        variables={"when": "jutri ob 9h"},
    )
    whatsapp_inbound_note(organisation=org_a, contact=ana, at=timezone.now())
    free = reminder(org_a, ana, key="staff:2", channel="whatsapp", text="Hvala, vidimo se.")
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.sent == 2 and report.requests == 2
    assert templates == [
        {
            "messages": [
                {
                    "from": "38640111222",
                    "to": "38641123456",
                    "messageId": templated.our_id,
                    "content": {
                        "templateName": "appointment_reminder",
                        "templateData": {"body": {"placeholders": ["Ana", "jutri ob 9h"]}},
                        "language": "sl",
                    },
                }
            ]
        }
    ]
    assert texts == [
        {
            "from": "38640111222",
            "to": "38641123456",
            "messageId": free.our_id,
            "content": {"text": "Hvala, vidimo se."},
        }
    ]


def test_delivery_reports_and_inbound_parse_from_the_documented_shapes(infobip):
    from messaging.providers.base import ProviderConfig
    from messaging.providers.infobip import InfobipSmsProvider

    provider = InfobipSmsProvider(ProviderConfig())
    (report,) = provider.parse_delivery_reports(
        {
            "results": [
                {
                    "bulkId": "b",
                    "messageId": "abc",
                    "to": "38641123456",
                    "sender": "Klinika",
                    "sentAt": "2019-11-09T16:00:00.000+0000",
                    "doneAt": "2019-11-09T16:00:02.000+0000",
                    "messageCount": 2,
                    "status": {
                        "groupId": 3,
                        "groupName": "DELIVERED",
                        "id": 5,
                        "name": "DELIVERED_TO_HANDSET",
                    },
                    "error": {
                        "groupId": 0,
                        "groupName": "OK",
                        "id": 0,
                        "name": "NO_ERROR",
                        "permanent": False,
                    },
                }
            ]
        }
    )
    assert report.our_id == "abc" and report.status == "delivered" and report.parts == 2
    assert report.at == dt.datetime(2019, 11, 9, 16, 0, 2, tzinfo=dt.UTC)
    assert (
        report.event_key
        == provider.parse_delivery_reports(
            {
                "results": [
                    {
                        "messageId": "abc",
                        "doneAt": "2019-11-09T16:00:02.000+0000",
                        "status": {"groupId": 3, "id": 5},
                    }
                ]
            }
        )[0].event_key
    )
    (inbound,) = provider.parse_inbound(
        {
            "results": [
                {
                    "messageId": "m1",
                    "from": "38641123456",
                    "to": "38640111222",
                    "text": "ODJAVA",
                    "cleanText": "",
                    "keyword": "ODJAVA",
                    "receivedAt": "2019-11-09T16:00:00.000+0000",
                }
            ],
            "messageCount": 1,
            "pendingMessageCount": 0,
        }
    )
    assert inbound.sender == "+38641123456" and inbound.keyword == "ODJAVA"
