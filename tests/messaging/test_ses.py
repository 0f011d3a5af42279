"""The SES adapter against moto's server on loopback (a real sesv2 HTTP endpoint): the e-mail
goes as Content.Simple with the RFC 8058 headers on marketing only (MSG-1, MSG-8)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket

import boto3
import pytest
import time_machine

from messaging import dispatch
from messaging.providers import ses
from messaging.services import message_enqueue

pytestmark = pytest.mark.django_db

REGION = "eu-central-1"
FROM = "info@klinika.example.test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def ses_wire(moto_endpoint, settings, monkeypatch):
    """SES as the e-mail provider; returns the SendEmail request bodies as they went out."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.MESSAGING_PROVIDERS = {
        **settings.MESSAGING_PROVIDERS,
        "email": "messaging.providers.ses.SesEmailProvider",
    }
    settings.SES_REGION = REGION
    settings.SES_ENDPOINT_URL = moto_endpoint
    settings.DEFAULT_FROM_EMAIL = FROM
    ses._clients.clear()
    boto3.client("sesv2", region_name=REGION, endpoint_url=moto_endpoint).create_email_identity(
        EmailIdentity=FROM
    )
    sent: list[dict] = []
    # Observe the real request on its way out (botocore's own event hook), not a stand-in.
    ses._client().meta.events.register(
        "before-send.sesv2.SendEmail", lambda request, **kw: sent.append(json.loads(request.body))
    )
    with time_machine.travel(dt.datetime(2025, 6, 10, 8, 0, tzinfo=dt.UTC), tick=True):
        yield sent
    ses._clients.clear()


@pytest.mark.obligation("MSG-1", "MSG-8")
def test_ses_sends_simple_content_with_list_unsubscribe_headers_on_marketing_only(
    org_a, ana, offer_email, reminder_email, ses_wire
):
    marketing = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="email",
        kind="marketing",
        purpose="marketing",
        template=offer_email,
        dedupe_key="campaign:1",
    )
    reminder = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="email",
        kind="transactional",
        purpose="appointment_reminders",
        template=reminder_email,
        variables={"when": "jutri"},
        dedupe_key="staff:1",
    )
    report = dispatch.dispatch_batch(queue="messaging-bulk")
    assert report.sent == 2 and report.requests == 2
    by_id = {body["EmailTags"][0]["Value"]: body for body in ses_wire}
    offer = by_id[marketing.our_id]
    assert offer["FromEmailAddress"] == FROM
    assert offer["Destination"] == {"ToAddresses": ["ana@example.test"]}
    simple = offer["Content"]["Simple"]
    assert simple["Subject"]["Data"] == "Novost za Ana"
    assert "Odjava: https://pep.example.test/u/" in simple["Body"]["Text"]["Data"]
    headers = {h["Name"]: h["Value"] for h in simple["Headers"]}
    assert headers["List-Unsubscribe"].startswith("<https://pep.example.test/u/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Headers" not in by_id[reminder.our_id]["Content"]["Simple"]
    marketing.refresh_from_db()
    assert marketing.status == "sent" and marketing.provider == "ses"
    assert marketing.provider_message_id  # SES's own MessageId


def test_an_unverified_sender_is_a_permanent_failure_with_ses_reason(
    org_a, ana, reminder_email, ses_wire, settings
):
    settings.DEFAULT_FROM_EMAIL = "nobody@unverified.example.test"
    message = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="email",
        kind="transactional",
        purpose="appointment_reminders",
        template=reminder_email,
        variables={"when": "jutri"},
        dedupe_key="staff:1",
    )
    assert dispatch.dispatch_batch(queue="messaging-bulk").failed == 1
    message.refresh_from_db()
    assert message.status == "failed" and message.error_permanent
    assert "MessageRejected" in message.last_error
