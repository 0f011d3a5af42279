"""SES bounces and complaints through SNS (MSG-7, CON-6): signatures v1 and v2 verified against a
real (self-signed) certificate served by a loopback HTTP server, the certificate's origin and the
topic checked, subscriptions confirmed, hard bounces marking the address undeliverable and
complaints recorded as objections to direct marketing."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from consent.eligibility import eligibility_decide
from consent.models import Objection, SuppressionEntry
from messaging import dispatch, sns
from messaging.inbound import contact_address_undeliverable, undeliverable_digests
from messaging.models import Message, MessageEvent
from messaging.ratelimit import limiter
from messaging.receipts import UndeliverableAddress, WebhookReceipt
from messaging.services import message_enqueue, provider_account_for
from tests.messaging import test_webhooks as hooks

pytestmark = pytest.mark.django_db
eager_celery = hooks.eager_celery  # autouse: the receipt task runs in the test, as a worker would

TOPIC = "arn:aws:sns:eu-central-1:123456789012:carely-ses-events"
CERT_PATH = "/SimpleNotificationService-test.pem"


@pytest.fixture(scope="module")
def signing_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def loopback_sns(settings, httpserver, signing_key):
    """The certificate on a loopback server, and the URL rule widened to reach it (production
    keeps https://sns.<region>.amazonaws.com only)."""
    _key, pem = signing_key
    httpserver.expect_request(CERT_PATH).respond_with_data(pem, content_type="text/plain")
    settings.SNS_CERT_URL_PATTERN = r"http://(localhost|127\.0\.0\.1):\d+/"
    settings.SES_SNS_TOPIC_ARNS = (TOPIC,)
    sns.cache_clear()
    yield httpserver
    sns.cache_clear()


@pytest.fixture
def token(org_a) -> str:
    return provider_account_for(org_a).webhook_token


def sign(message: dict, key, version: str = "1") -> dict:
    message = {**message, "SignatureVersion": version}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns.string_to_sign(message), padding.PKCS1v15(), algorithm)
    return {**message, "Signature": base64.b64encode(signature).decode()}


def notification(server, ses: dict, **overrides) -> dict:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses),
        "Timestamp": "2025-06-10T08:00:09.000Z",
        "SigningCertURL": server.url_for(CERT_PATH),
        "UnsubscribeURL": server.url_for("/unsubscribe"),
        **overrides,
    }


def bounce(address: str, our_id: str = "", bounce_type: str = "Permanent") -> dict:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}],
            "timestamp": "2025-06-10T08:00:08.000Z",
            "feedbackId": "0102-bounce-1",
        },
        "mail": {
            "messageId": "ses-0102",
            "destination": [address],
            "tags": {"carely-id": [our_id]} if our_id else {},
        },
    }


def complaint(address: str) -> dict:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2025-06-10T08:05:00.000Z",
            "feedbackId": "0102-complaint-1",
        },
        "mail": {"messageId": "ses-0103", "destination": [address]},
    }


def deliver(client, token, body: dict, capture):
    with capture(execute=True):
        return client.post(
            f"/webhooks/ses/{token}/", json.dumps(body), content_type="text/plain; charset=UTF-8"
        )


def sent_email(org, contact, template) -> Message:
    limiter.cache_clear()
    message = message_enqueue(
        organisation=org,
        contact=contact,
        channel="email",
        kind="transactional",
        purpose="appointment_reminders",
        template=template,
        variables={"when": "jutri ob 9h"},
        dedupe_key="staff:e1",
    )
    dispatch.dispatch_batch(queue="messaging-transactional")
    message.refresh_from_db()
    return message


@pytest.mark.obligation("MSG-7")
@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_permanent_bounce_marks_the_address_undeliverable(
    client,
    org_a,
    token,
    ana,
    reminder_email,
    loopback_sns,
    signing_key,
    version,
    django_capture_on_commit_callbacks,
):
    key, _ = signing_key
    message = sent_email(org_a, ana, reminder_email)
    body = sign(
        notification(loopback_sns, bounce("Ana@Example.test", message.our_id)), key, version
    )
    response = deliver(client, token, body, django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    row = UndeliverableAddress.objects.get(organisation=org_a)
    assert (row.kind, row.digest) == ("email", ana.email_bidx)  # the contact's own blind index
    assert row.reason == "ses_bounce_permanent:General"
    assert contact_address_undeliverable(contact=ana, channel="email")
    assert not contact_address_undeliverable(contact=ana, channel="sms")
    assert undeliverable_digests(organisation=org_a, digests=[ana.email_bidx, ana.phone_bidx]) == {
        ana.email_bidx
    }
    message.refresh_from_db()
    assert message.status == "undeliverable" and message.error_permanent
    event = MessageEvent.objects.get(message=message, source="webhook")
    assert event.detail == {
        "provider": "ses",
        "bounce_type": "Permanent",
        "bounce_sub_type": "General",
    }
    # The certificate was fetched once and cached.
    assert len(loopback_sns.log) == 1


@pytest.mark.obligation("MSG-7")
def test_a_hard_bounce_cancels_queued_email_and_a_soft_one_changes_nothing(
    client,
    org_a,
    token,
    ana,
    bor,
    reminder_email,
    loopback_sns,
    signing_key,
    django_capture_on_commit_callbacks,
):
    key, _ = signing_key
    queued = message_enqueue(
        organisation=org_a,
        contact=bor,
        channel="email",
        kind="transactional",
        purpose="appointment_reminders",
        template=reminder_email,
        variables={"when": "9h"},
        dedupe_key="staff:e2",
    )
    soft = sign(
        notification(
            loopback_sns, bounce("bor@example.test", bounce_type="Transient"), MessageId="soft"
        ),
        key,
    )
    deliver(client, token, soft, django_capture_on_commit_callbacks)
    queued.refresh_from_db()
    assert queued.status == "queued" and not UndeliverableAddress.objects.exists()
    hard = sign(notification(loopback_sns, bounce("bor@example.test")), key)
    deliver(client, token, hard, django_capture_on_commit_callbacks)
    queued.refresh_from_db()
    assert queued.status == "cancelled" and queued.last_error == "address_bounced"


@pytest.mark.obligation("MSG-7", "CON-6")
def test_a_complaint_is_an_objection_to_direct_marketing(
    client,
    org_a,
    token,
    ana,
    loopback_sns,
    signing_key,
    django_capture_on_commit_callbacks,
):
    key, _ = signing_key
    for n in range(2):  # a second complaint records no second objection
        body = sign(
            notification(loopback_sns, complaint("ana@example.test"), MessageId=f"c{n}"), key
        )
        assert deliver(client, token, body, django_capture_on_commit_callbacks).status_code == 200
    objection = Objection.objects.get(contact=ana)
    assert (objection.kind, objection.source) == ("direct_marketing", "system")
    decision = eligibility_decide(
        organisation=org_a,
        contact_ids=[ana.pk],
        kind="marketing",
        channel="email",
        purpose="marketing",
    )[ana.pk]
    assert "objection" in decision.reasons and "suppressed" in decision.reasons
    transactional = eligibility_decide(
        organisation=org_a, contact_ids=[ana.pk], kind="transactional", channel="email"
    )[ana.pk]
    assert transactional.allowed  # an objection to marketing does not stop reminders


@pytest.mark.obligation("CON-6")
def test_a_complaint_from_an_address_no_contact_has_is_suppressed(
    client,
    org_a,
    token,
    loopback_sns,
    signing_key,
    django_capture_on_commit_callbacks,
):
    key, _ = signing_key
    body = sign(notification(loopback_sns, complaint("gone@example.test")), key)
    deliver(client, token, body, django_capture_on_commit_callbacks)
    assert SuppressionEntry.objects.filter(organisation=org_a, kind="email").count() == 1


@pytest.mark.obligation("MSG-7")
def test_a_tampered_message_is_refused_and_nothing_stored(
    client,
    org_a,
    token,
    ana,
    loopback_sns,
    signing_key,
    django_capture_on_commit_callbacks,
):
    key, _ = signing_key
    body = sign(notification(loopback_sns, bounce("ana@example.test")), key)
    body["Message"] = json.dumps(bounce("bor@example.test"))
    response = deliver(client, token, body, django_capture_on_commit_callbacks)
    assert response.status_code == 403
    assert not WebhookReceipt.objects.exists() and not UndeliverableAddress.objects.exists()
    # Signed with another key: same refusal.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sign(notification(loopback_sns, bounce("ana@example.test")), stranger, "2")
    assert deliver(client, token, forged, django_capture_on_commit_callbacks).status_code == 403


@pytest.mark.obligation("MSG-7")
def test_an_unknown_topic_or_token_is_refused(
    client,
    org_a,
    token,
    loopback_sns,
    signing_key,
    django_capture_on_commit_callbacks,
):
    key, _ = signing_key
    other_topic = sign(
        notification(
            loopback_sns,
            bounce("ana@example.test"),
            TopicArn="arn:aws:sns:eu-central-1:999999999999:someone-else",
        ),
        key,
    )
    assert (
        deliver(client, token, other_topic, django_capture_on_commit_callbacks).status_code == 403
    )
    good = sign(notification(loopback_sns, bounce("ana@example.test")), key)
    assert (
        deliver(client, "no-such-token", good, django_capture_on_commit_callbacks).status_code
        == 404
    )
    assert not WebhookReceipt.objects.exists()


@pytest.mark.obligation("MSG-7")
def test_in_production_mode_a_certificate_off_amazonaws_is_never_fetched(
    client,
    org_a,
    token,
    settings,
    httpserver,
    signing_key,
    django_capture_on_commit_callbacks,
):
    from carely import settings as production

    key, pem = signing_key
    httpserver.expect_request(CERT_PATH).respond_with_data(pem)
    settings.SES_SNS_TOPIC_ARNS = (TOPIC,)
    assert settings.SNS_CERT_URL_PATTERN == production.SNS_CERT_URL_PATTERN  # not widened
    sns.cache_clear()
    body = sign(notification(httpserver, bounce("ana@example.test")), key)
    assert deliver(client, token, body, django_capture_on_commit_callbacks).status_code == 403
    assert httpserver.log == []  # refused before any request
    for url, allowed in [
        ("https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("http://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.pem", False),
        ("https://sns.eu-central-1.amazonaws.com.evil.example/cert.pem", False),
        ("https://evil.example/sns.eu-central-1.amazonaws.com/cert.pem", False),
        ("https://sns.eu-central-1.amazonaws.com@evil.example/cert.pem", False),
    ]:
        assert sns.url_allowed(url) is allowed, url


@pytest.mark.obligation("MSG-7")
def test_a_subscription_confirmation_is_verified_and_confirmed(
    client,
    org_a,
    token,
    loopback_sns,
    signing_key,
    django_capture_on_commit_callbacks,
):
    key, _ = signing_key
    loopback_sns.expect_request("/confirm").respond_with_data("<ConfirmSubscriptionResponse/>")
    body = sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37",
            "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": loopback_sns.url_for("/confirm"),
            "Timestamp": "2025-06-10T08:00:00.000Z",
            "SigningCertURL": loopback_sns.url_for(CERT_PATH),
        },
        key,
    )
    assert deliver(client, token, body, django_capture_on_commit_callbacks).status_code == 200
    assert [r.path for r, _ in loopback_sns.log] == [CERT_PATH, "/confirm"]
    assert WebhookReceipt.objects.get().outcome == "subscription_confirmed"
