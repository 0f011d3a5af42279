"""message_enqueue (MSG-3, MSG-6, MSG-8, MSG-9, CON-7): render before queueing, decide
eligibility, opt-out line and unsubscribe headers on marketing only, dedupe, cancel."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from consent.services import consent_withdraw
from consent.tokens import unsubscribe_token_read
from messaging.models import Message, MessageEvent, Status
from messaging.segments import sms_encoding
from messaging.services import (
    SMS_OPT_OUT,
    SMS_OPT_OUT_REPLY,
    MessageInvalid,
    MessageNotCancellable,
    MessageRefused,
    message_cancel,
    message_enqueue,
    messages_enqueue_bulk,
    provider_account_for,
    template_save,
)
from messaging.views import template_preview
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db


def enqueue(org, contact, template=None, **kw):
    kw.setdefault("channel", template.channel if template else "sms")
    kw.setdefault("kind", template.kind if template else "transactional")
    kw.setdefault("purpose", "marketing" if kw["kind"] == "marketing" else "appointment_reminders")
    kw.setdefault("dedupe_key", "staff:1")
    return message_enqueue(organisation=org, contact=contact, template=template, **kw)


@pytest.mark.obligation("MSG-6", "CON-7")
def test_a_queued_message_holds_content_basis_and_its_first_event(
    org_a, ana, reminder_sms, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        message = enqueue(org_a, ana, reminder_sms, variables={"when": "jutri ob 9h"})
    assert len(callbacks) == 1  # one wake-up for the dispatch worker, after commit
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert message.body == "Pozdravljeni Ana, termin jutri ob 9h pri Clinic A."
    assert message.to_address == "+38641123456"
    assert message.legal_basis == "contract" and message.consent_entry_id is None
    assert message.template_version == 1 and message.parts_estimated == 1
    assert len(message.our_id) == 32 and not message.respect_quiet_hours
    (event,) = MessageEvent.objects.filter(message=message)
    assert event.kind == "queued" and event.detail["legal_basis"] == "contract"


@pytest.mark.obligation("MSG-3")
def test_missing_or_unknown_variables_fail_before_anything_is_queued(org_a, ana, reminder_sms):
    with pytest.raises(MessageInvalid) as missing:
        enqueue(org_a, ana, reminder_sms)
    assert missing.value.problems == ["No value for {{ when }}. Give one, or change the template."]
    with pytest.raises(MessageInvalid) as unknown:
        enqueue(org_a, ana, reminder_sms, variables={"when": "9h", "room": "3"})
    assert "room" in str(unknown.value)
    with pytest.raises(MessageInvalid) as typo:
        template_save(
            organisation=org_a,
            name="x",
            kind="transactional",
            channel="sms",
            language="sl",
            body="{{ frist_name }}",
        )
    assert "Did you mean {{ first_name }}?" in str(typo.value)
    assert not Message.objects.exists()


@pytest.mark.obligation("MSG-8", "CON-3", "CON-7")
def test_marketing_sms_ends_with_an_opt_out_line_in_the_contacts_language(
    org_a, ana, bor, offer_sms
):
    message = enqueue(org_a, ana, offer_sms)
    first, last = message.body.split("\n")
    assert first == "Ana, ta mesec 20 % popusta na preglede."
    assert last.startswith("Odjava: https://pep.example.test/u/")
    assert message.legal_basis == "consent" and message.consent_entry_id is not None
    with pytest.raises(MessageRefused) as refused:
        enqueue(org_a, bor, offer_sms)
    assert refused.value.reasons == ["no_consent"]


@pytest.mark.obligation("MSG-8", "CON-2", "MSG-3")
def test_a_marketing_sms_from_a_number_also_offers_the_stop_reply_and_the_preview_counts_it(
    org_a, ana, offer_sms
):
    account = provider_account_for(org_a)
    account.sms_sender = "+386 40 111 222"  # a long code: replies reach the inbound webhook
    account.save(update_fields=["sms_sender"])
    message = enqueue(org_a, ana, offer_sms)
    line = message.body.split("\n")[-1]
    assert line.startswith("Odjava: odgovorite ODJAVA ali https://pep.example.test/u/")
    assert message.parts_estimated == sms_encoding(message.body).parts == 2
    # The preview shows the same line and counts the same parts the clinic will pay for.
    preview = template_preview(template=offer_sms, values={}, organisation=org_a, contact=ana)
    assert preview.body.split("\n")[-1].startswith("Odjava: odgovorite ODJAVA ali https://")
    assert preview.encoding is not None and preview.encoding.parts == message.parts_estimated

    ben = make_contact(org_a, first_name="Ben", phone="+38641999888", preferred_language="en")
    record(ben)
    english = enqueue(org_a, ben, offer_sms)
    assert re.fullmatch(
        r"Reply STOP or visit https://pep\.example\.test/u/\S+/ to opt out",
        english.body.split("\n")[-1],
    )
    # No line may force UCS-2 on its own (č/š/ž would double the parts).
    for table in (SMS_OPT_OUT, SMS_OPT_OUT_REPLY):
        for text in table.values():
            assert sms_encoding(text.format(url="https://x.test/u/t/")).encoding == "GSM-7"


@pytest.mark.obligation("MSG-8", "CON-2")
def test_an_alphanumeric_sender_cannot_take_replies_so_the_line_offers_only_the_link(
    org_a, ana, offer_sms, settings
):
    settings.MESSAGING_SMS_SENDER = "Carely"
    message = enqueue(org_a, ana, offer_sms)
    assert message.body.split("\n")[-1].startswith("Odjava: https://pep.example.test/u/")
    assert "ODJAVA" not in message.body


@pytest.mark.obligation("MSG-8")
def test_marketing_email_gets_a_visible_link_and_rfc8058_headers_transactional_none(
    org_a, ana, offer_email, reminder_email
):
    marketing = enqueue(org_a, ana, offer_email)
    headers = json.loads(marketing.extras)["headers"]
    assert headers["List-Unsubscribe"].startswith("<https://pep.example.test/u/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Odjava: https://pep.example.test/u/" in marketing.body
    assert 'href="https://pep.example.test/u/' in marketing.html_body
    reminder = enqueue(org_a, ana, reminder_email, variables={"when": "jutri"}, dedupe_key="s:2")
    assert reminder.extras == "" and "/u/" not in reminder.body


@pytest.mark.obligation("MSG-8", "CON-2")
def test_marketing_email_list_unsubscribe_adds_a_mailto_when_a_domain_is_set(
    org_a, ana, offer_email, reminder_email, settings
):
    settings.CARELY_UNSUBSCRIBE_MAILTO_DOMAIN = "unsub.pep.example.test"
    marketing = enqueue(org_a, ana, offer_email)
    value = json.loads(marketing.extras)["headers"]["List-Unsubscribe"]
    https, mailto = (part.strip() for part in value.split(","))
    assert https.startswith("<https://pep.example.test/u/") and https.endswith("/>")
    assert mailto.startswith("<mailto:unsubscribe@unsub.pep.example.test?subject=unsubscribe%20")
    # The subject carries the same signed token as the link: it names this contact and purpose.
    token = unquote(mailto[1:-1].split("subject=", 1)[1]).removeprefix("unsubscribe ")
    assert unsubscribe_token_read(token) == (org_a.pk, ana.pk, "marketing")
    assert https[1:-1].rstrip("/").rsplit("/", 1)[1] == token
    reminder = enqueue(org_a, ana, reminder_email, variables={"when": "jutri"}, dedupe_key="s:2")
    assert reminder.extras == ""

    settings.CARELY_UNSUBSCRIBE_MAILTO_DOMAIN = ""
    plain = enqueue(org_a, ana, offer_email, dedupe_key="s:3")
    assert "mailto:" not in json.loads(plain.extras)["headers"]["List-Unsubscribe"]


@pytest.mark.obligation("MSG-9")
def test_a_second_enqueue_with_the_same_dedupe_key_is_a_no_op(org_a, ana, bor, reminder_sms):
    first = enqueue(org_a, ana, reminder_sms, variables={"when": "9h"}, dedupe_key="api:7:abc")
    again = enqueue(org_a, ana, reminder_sms, variables={"when": "10h"}, dedupe_key="api:7:abc")
    assert again.pk == first.pk and again.body == first.body
    assert Message.objects.count() == 1 and first.events.count() == 1
    # The key is per contact and channel: the same request to someone else is a new message.
    second = enqueue(org_a, bor, reminder_sms, variables={"when": "9h"}, dedupe_key="api:7:abc")
    assert second.pk != first.pk


def test_email_free_text_needs_a_subject_and_whatsapp_text_needs_an_open_session(org_a, ana):
    with pytest.raises(MessageInvalid, match="subject"):
        enqueue(org_a, ana, text="Hvala.", channel="email")
    with pytest.raises(MessageRefused) as closed:
        enqueue(org_a, ana, text="Hvala za sporočilo.", channel="whatsapp")
    assert closed.value.reasons == ["whatsapp_session_closed"]


@pytest.mark.obligation("CON-2", "MSG-5")
def test_withdrawn_consent_refuses_with_its_reason(org_a, ana, offer_sms):
    consent_withdraw(contact=ana, purpose="marketing", channel="all", source="staff")
    with pytest.raises(MessageRefused) as refused:
        enqueue(org_a, ana, offer_sms)
    assert refused.value.reasons == ["withdrawn"]


def test_cancel_only_before_dispatch(org_a, ana, reminder_sms):
    message = enqueue(org_a, ana, reminder_sms, variables={"when": "9h"})
    message_cancel(message=message, reason_code="appointment_moved")
    message.refresh_from_db()
    assert message.status == Status.CANCELLED and message.final_at is not None
    with pytest.raises(MessageNotCancellable):
        message_cancel(message=message)
    assert [e.kind for e in message.events.all()] == ["queued", "cancelled"]


def test_template_versions_are_immutable(org_a, reminder_sms):
    second = template_save(
        organisation=org_a,
        name="reminder",
        kind="transactional",
        channel="sms",
        language="sl",
        body="Termin {{ when }}.",
        variables=["when"],
    )
    reminder_sms.refresh_from_db()
    assert second.version == 2 and reminder_sms.retired_at is not None
    assert reminder_sms.body.startswith("Pozdravljeni")


@pytest.mark.obligation("MSG-9")
def test_bulk_enqueue_reports_refusals_and_skips_what_is_queued(org_a, ana, bor, offer_sms):
    cene = make_contact(org_a, first_name="Cene", phone="+38641000111")
    result = messages_enqueue_bulk(
        organisation=org_a,
        contacts=[ana, bor, cene],
        channel="sms",
        kind="marketing",
        purpose="marketing",
        template=offer_sms,
        dedupe_key="campaign:1",
        campaign_id=1,
    )
    assert result.created == 1
    assert result.refused == {bor.pk: ["no_consent"], cene.pk: ["no_consent"]}
    again = messages_enqueue_bulk(
        organisation=org_a,
        contacts=[ana],
        channel="sms",
        kind="marketing",
        purpose="marketing",
        template=offer_sms,
        dedupe_key="campaign:1",
    )
    assert again.created == 0 and again.already_queued == 1
    assert Message.objects.filter(campaign_id=1).count() == 1


def test_an_enqueue_stands_when_the_broker_cannot_take_the_wake_up(
    org_a, ana, offer_sms, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    """The row is committed; messages_dispatch_sweep wakes the queue within 15 s."""
    from messaging import tasks
    from messaging.models import Message
    from messaging.services import message_enqueue

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.messages_dispatch, "apply_async", broken)
    with django_capture_on_commit_callbacks(execute=True):
        message = message_enqueue(
            organisation=org_a,
            contact=ana,
            channel="sms",
            kind="marketing",
            purpose="marketing",
            template=offer_sms,
            dedupe_key="staff:broker-down",
        )
    assert Message.objects.get(pk=message.pk).status == "queued"
    assert "the sweep will" in caplog.text


@pytest.mark.obligation("MSG-5")
def test_a_refused_contact_gets_every_reason_before_any_rendering(org_a, bor, offer_sms):
    # No marketing consent and no open WhatsApp session: both reasons, for one message and for
    # a batch alike.
    whatsapp = {"channel": "whatsapp", "kind": "marketing", "text": "Akcija ta mesec."}
    with pytest.raises(MessageRefused) as single:
        enqueue(org_a, bor, **whatsapp)
    assert sorted(single.value.reasons) == ["no_consent", "whatsapp_session_closed"]
    batch = messages_enqueue_bulk(
        organisation=org_a,
        contacts=[bor],
        purpose="marketing",
        dedupe_key="campaign:1",
        **whatsapp,
    )
    assert sorted(batch.refused[bor.pk]) == ["no_consent", "whatsapp_session_closed"]
    # The decision comes first: a text that could not be rendered (an unknown variable) does
    # not turn a refusal into "invalid".
    with pytest.raises(MessageRefused) as refused:
        enqueue(org_a, bor, offer_sms, variables={"unknown": "x"})
    assert refused.value.reasons == ["no_consent"]
    assert not Message.objects.exists()
