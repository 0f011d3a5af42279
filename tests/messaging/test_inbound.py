"""Inbound replies (CON-2, MSG-7): a STOP-style keyword in English or Slovenian withdraws consent
for that channel in that organisation, stops queued marketing on it, and is kept as evidence;
an unknown sender is logged and never becomes a contact; WhatsApp replies open the session."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from consent.eligibility import eligibility_decide
from consent.models import ConsentEntry
from contacts.models import Contact
from messaging.inbound import normalise_keyword, stop_keyword_match
from messaging.models import Message, MessageEvent, WhatsAppSession
from messaging.receipts import InboundMessage, StopKeywordSet
from messaging.services import message_enqueue
from tests.messaging import test_webhooks as hooks
from tests.messaging.test_webhooks import inbound_url, post

pytestmark = pytest.mark.django_db
eager_celery = hooks.eager_celery  # autouse: the receipt task runs in the test, as a worker would


@pytest.fixture
def account_a(org_a):
    return hooks.webhook_account(org_a)


def infobip_time(moment=None) -> str:
    """Infobip's timestamp form: milliseconds and an offset without a colon."""
    moment = (moment or timezone.now()).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def mo(text, *, sender="38641123456", keyword="", message_id="mo-1", received=None):
    """One inbound SMS as Infobip's MO_JSON_2 sends it (numbers without "+"). Received now: the
    withdrawal is dated by it, and a consent given later would rightly win over it."""
    return {
        "results": [
            {
                "messageId": message_id,
                "from": sender,
                "to": "38640999000",
                "text": text,
                "cleanText": text,
                "keyword": keyword,
                # Infobip's time has milliseconds only: truncating "now" could date the reply
                # before a consent recorded a few microseconds earlier in the same test, which
                # would then rightly win over it. A millisecond later, truncated, is never
                # earlier than now (and the webhook caps a future time at its own now).
                "receivedAt": received
                or infobip_time(timezone.now() + dt.timedelta(milliseconds=1)),
                "smsCount": 1,
                "price": {"pricePerMessage": 0, "currency": "EUR"},
                "callbackData": None,
            }
        ],
        "messageCount": 1,
        "pendingMessageCount": 0,
    }


def whatsapp(text, *, sender="38641123456", message_id="wa-1"):
    return {
        "results": [
            {
                "from": sender,
                "to": "38640999000",
                "integrationType": "WHATSAPP",
                "receivedAt": infobip_time(),
                "messageId": message_id,
                "message": {"type": "TEXT", "text": text},
                "contact": {"name": "Ana"},
            }
        ],
        "messageCount": 1,
        "pendingMessageCount": 0,
    }


def marketing(org, contact, channel, key, template=None):
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel=channel,
        kind="marketing",
        purpose="marketing",
        template=template,
        text=None if template else "Popust ta mesec.",
        dedupe_key=key,
    )


def reminder(org, contact, key="staff:r"):
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        text="Termin jutri ob 9h.",
        dedupe_key=key,
    )


def may_market(org, contact, channel):
    return eligibility_decide(
        organisation=org,
        contact_ids=[contact.pk],
        kind="marketing",
        channel=channel,
        purpose="marketing",
    )[contact.pk]


@pytest.mark.obligation("CON-2", "MSG-7")
@pytest.mark.parametrize(
    "text", ["odjava", "Odjava ", "ODJAVA", "stop", "XYZ STOP", "  Odjáva!", "UNSUBSCRIBE"]
)
def test_a_stop_reply_withdraws_that_channel_and_stops_queued_marketing(
    client, account_a, org_a, ana, offer_email, text, django_capture_on_commit_callbacks
):
    queued_sms = marketing(org_a, ana, "sms", "campaign:1")
    queued_email = marketing(org_a, ana, "email", "campaign:1", offer_email)
    transactional = reminder(org_a, ana)
    response = post(
        client, inbound_url(account_a), mo(text), capture=django_capture_on_commit_callbacks
    )
    assert response.status_code == 200

    refused = may_market(org_a, ana, "sms")
    assert not refused.allowed and refused.reasons == ["withdrawn"]
    assert may_market(org_a, ana, "email").allowed  # only the channel the reply came on
    entry = ConsentEntry.objects.get(contact=ana, status="withdrawn")
    assert (entry.source, entry.channel, entry.purpose.slug) == ("stop_reply", "sms", "marketing")

    evidence = InboundMessage.objects.get()
    assert evidence.contact == ana and evidence.outcome == "withdrawn"
    assert evidence.consent_entry_ids == [entry.pk] and evidence.consent_entry_id == entry.pk
    assert evidence.sender == "+38641123456" and evidence.text == text
    assert evidence.keyword in {"odjava", "stop", "unsubscribe"}
    assert evidence.cancelled_messages == 1

    for message, status in (
        (queued_sms, "cancelled"),
        (queued_email, "queued"),
        (transactional, "queued"),
    ):
        message.refresh_from_db()
        assert message.status == status, message
    cancel = MessageEvent.objects.get(message=queued_sms, kind="cancelled")
    assert cancel.source == "webhook" and cancel.detail == {"reason": "stop_reply"}


@pytest.mark.obligation("CON-2", "MSG-7")
def test_the_keyword_field_alone_is_enough(
    client, account_a, org_a, ana, django_capture_on_commit_callbacks
):
    post(
        client,
        inbound_url(account_a),
        mo("", keyword="STOP"),
        capture=django_capture_on_commit_callbacks,
    )
    assert not may_market(org_a, ana, "sms").allowed


@pytest.mark.obligation("CON-2")
def test_an_ordinary_reply_withdraws_nothing(
    client, account_a, org_a, ana, django_capture_on_commit_callbacks
):
    queued = marketing(org_a, ana, "sms", "campaign:1")
    for n, text in enumerate(
        ["Hvala, pridem.", "please don't stop my reminders", "STOP STOP STOP"]
    ):
        post(
            client,
            inbound_url(account_a),
            mo(text, message_id=f"mo-{n}"),
            capture=django_capture_on_commit_callbacks,
        )
    assert may_market(org_a, ana, "sms").allowed
    assert set(InboundMessage.objects.values_list("outcome", flat=True)) == {"not_a_keyword"}
    queued.refresh_from_db()
    assert queued.status == "queued"


@pytest.mark.obligation("CON-2", "MSG-7")
def test_the_same_stop_delivered_twice_withdraws_once(
    client, account_a, org_a, ana, django_capture_on_commit_callbacks
):
    post(client, inbound_url(account_a), mo("STOP"), capture=django_capture_on_commit_callbacks)
    # A retry of the same message with a different envelope (another pendingMessageCount).
    body = mo("STOP")
    body["pendingMessageCount"] = 3
    post(client, inbound_url(account_a), body, capture=django_capture_on_commit_callbacks)
    # And a second, separate STOP: evidence kept, nothing left to withdraw.
    post(
        client,
        inbound_url(account_a),
        mo("stop", message_id="mo-2"),
        capture=django_capture_on_commit_callbacks,
    )
    assert ConsentEntry.objects.filter(contact=ana, status="withdrawn").count() == 1
    assert list(InboundMessage.objects.order_by("pk").values_list("outcome", flat=True)) == [
        "withdrawn",
        "already_withdrawn",
    ]


@pytest.mark.obligation("CON-2", "MSG-7")
def test_an_unknown_sender_is_logged_and_never_becomes_a_contact(
    client, account_a, org_a, ana, caplog, django_capture_on_commit_callbacks
):
    contacts = Contact.objects.count()
    post(
        client,
        inbound_url(account_a),
        mo("ODJAVA", sender="38651000111"),
        capture=django_capture_on_commit_callbacks,
    )
    assert Contact.objects.count() == contacts
    assert not ConsentEntry.objects.filter(status="withdrawn").exists()
    evidence = InboundMessage.objects.get()
    assert evidence.contact is None and evidence.outcome == "unknown_sender"
    assert "unknown sender" in caplog.text and "38651000111" not in caplog.text
    assert may_market(org_a, ana, "sms").allowed


@pytest.mark.obligation("CON-2", "TEN-1")
def test_a_stop_only_acts_in_the_organisation_whose_webhook_received_it(
    client, account_a, org_a, org_b, ana, django_capture_on_commit_callbacks
):
    from tests.consent.conftest import make_contact, record

    twin = make_contact(org_b, first_name="Ana", phone="+38641123456", relationship_status="active")
    record(twin, channel="all", purpose="marketing")
    post(client, inbound_url(account_a), mo("STOP"), capture=django_capture_on_commit_callbacks)
    assert not may_market(org_a, ana, "sms").allowed
    assert may_market(org_b, twin, "sms").allowed


@pytest.mark.obligation("CON-2", "MSG-7")
def test_a_whatsapp_reply_opens_the_session_and_a_whatsapp_stop_withdraws_whatsapp(
    client, account_a, org_a, ana, django_capture_on_commit_callbacks
):
    post(
        client,
        inbound_url(account_a),
        whatsapp("Hvala!"),
        capture=django_capture_on_commit_callbacks,
    )
    session = WhatsAppSession.objects.get(organisation=org_a, contact=ana)
    assert timezone.now() - session.last_inbound_at < dt.timedelta(seconds=5)
    assert may_market(org_a, ana, "whatsapp").allowed
    post(
        client,
        inbound_url(account_a),
        whatsapp("Odjava", message_id="wa-2"),
        capture=django_capture_on_commit_callbacks,
    )
    assert not may_market(org_a, ana, "whatsapp").allowed
    assert may_market(org_a, ana, "sms").allowed
    evidence = InboundMessage.objects.get(provider_message_id="wa-2")
    assert evidence.channel == "whatsapp" and evidence.outcome == "withdrawn"


@pytest.mark.obligation("CON-2")
def test_an_organisation_may_add_its_own_keywords(
    client, account_a, org_a, ana, django_capture_on_commit_callbacks
):
    StopKeywordSet.objects.create(organisation=org_a, keywords=["NE HVALA"])
    post(
        client, inbound_url(account_a), mo("ne  hvala"), capture=django_capture_on_commit_callbacks
    )
    assert not may_market(org_a, ana, "sms").allowed


def test_keyword_matching_rules():
    known = {normalise_keyword(w) for w in ("STOP", "ODJAVA", "unsubscribe")}
    match = lambda text, kw="": stop_keyword_match(text=text, keyword=kw, keywords=known)  # noqa: E731
    assert match(" Odjáva. ") == "odjava"
    assert match("promo stop") == "stop"
    assert match("", "Stop") == "stop"
    assert match("stop sending me offers") == ""
    assert match("Hvala") == ""
    assert json.dumps(sorted(known)) == '["odjava", "stop", "unsubscribe"]'
    assert Message.objects.model is Message  # the module imports the outbox it acts on


@pytest.mark.obligation("CON-2")
def test_a_consent_given_after_the_stop_was_received_is_not_undone_by_a_late_webhook(
    client, account_a, org_a, ana, django_capture_on_commit_callbacks
):
    from tests.consent.conftest import record

    sent_at = timezone.now() - dt.timedelta(minutes=10)
    record(ana, channel="sms", purpose="marketing")  # re-consented after replying STOP
    post(
        client,
        inbound_url(account_a),
        mo("STOP", received=infobip_time(sent_at)),
        capture=django_capture_on_commit_callbacks,
    )
    withdrawal = ConsentEntry.objects.get(contact=ana, status="withdrawn")
    assert withdrawal.recorded_at == sent_at.replace(
        microsecond=sent_at.microsecond // 1000 * 1000
    )  # dated by the reply
    assert may_market(org_a, ana, "sms").allowed
