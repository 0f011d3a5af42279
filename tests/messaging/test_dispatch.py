"""Dispatch against the outbox-only fake provider (MSG-5, MSG-9, MSG-4 quiet hours, CON-2):
eligibility decided again, quiet hours, the transactional lane, back-off, permanent errors."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carely.privacy.registry import Subject, registry
from consent.eligibility import eligibility_decide
from consent.services import consent_withdraw, suppression_add
from contacts.services import contact_restrict
from messaging import dispatch
from messaging.inbound import undeliverable_mark
from messaging.models import Message
from messaging.providers import fake
from messaging.providers.base import ProviderError
from messaging.ratelimit import limiter
from messaging.services import (
    MessageRefused,
    message_enqueue,
    messages_enqueue_bulk,
    sending_decide,
)
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db

BULK, TRANSACTIONAL = "messaging-bulk", "messaging-transactional"
# 10:00 in Ljubljana (CEST): outside the default quiet hours.
DAYTIME = dt.datetime(2025, 6, 10, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _daytime():
    with time_machine.travel(DAYTIME, tick=True):
        limiter.cache_clear()
        yield
        fake.failures.clear()


def offer(org, contact, key="campaign:1", channel="sms"):
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel=channel,
        kind="marketing",
        purpose="marketing",
        text="Popust ta mesec.",
        dedupe_key=key,
    )


def reminder(org, contact, key="staff:r1", **kw):
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        text="Termin jutri ob 9h.",
        dedupe_key=key,
        **kw,
    )


def refreshed(message):
    message.refresh_from_db()
    return message


@pytest.mark.obligation("MSG-6", "MSG-9")
def test_a_due_message_is_sent_once_and_recorded(org_a, ana, fake_providers):
    message = reminder(org_a, ana)
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.claimed == 1 and report.sent == 1 and report.requests == 1
    (sent,) = fake_providers
    assert sent.our_id == message.our_id and sent.to == "+38641123456"
    message = refreshed(message)
    assert message.status == "sent" and message.provider == "fake"
    assert message.provider_message_id == f"fake-{message.our_id}"
    assert message.attempts == 1 and message.sent_at and message.handed_at
    assert [e.kind for e in message.events.all()] == ["queued", "sent"]
    assert dispatch.dispatch_batch(queue=BULK).claimed == 0
    assert len(fake_providers) == 1


@pytest.mark.obligation("MSG-5", "CON-2", "CNT-4", "CON-6", "DSR-9")
def test_contacts_who_became_ineligible_after_enqueue_are_refused_with_reasons(
    org_a, ana, fake_providers
):
    people = {
        name: make_contact(org_a, first_name=name, phone=f"+3864100000{i}")
        for i, name in enumerate(["withdrawn", "restricted", "suppressed", "erased"])
    }
    for contact in people.values():
        record(contact, channel="all", purpose="marketing")
    messages = {name: offer(org_a, c) for name, c in people.items()}
    fine = offer(org_a, ana)
    consent_withdraw(
        contact=people["withdrawn"], purpose="marketing", channel="sms", source="staff"
    )
    contact_restrict(contact=people["restricted"], reason="DSR-10 request")
    suppression_add(organisation=org_a, phone=people["suppressed"].phone)
    registry.erase(Subject("contact", org_a.pk, people["erased"].pk), dry_run=False)

    report = dispatch.dispatch_batch(queue=BULK)
    assert report.claimed == 5 and report.sent == 1 and report.refused == 4
    assert [m.our_id for m in fake_providers] == [fine.our_id]
    expected = {
        "withdrawn": ["withdrawn"],
        "restricted": ["restricted"],
        "suppressed": ["suppressed"],
        "erased": ["erased"],
    }
    for name, message in messages.items():
        message = refreshed(message)
        assert message.status == "refused", name
        assert message.refusal_reasons == expected[name], name
        refusal = message.events.get(kind="refused")
        assert refusal.detail == {"reasons": expected[name]}
    erased = refreshed(messages["erased"])
    assert erased.contact_id is None and erased.body == "" and erased.to_address == ""


@pytest.mark.obligation("MSG-4")
def test_quiet_hours_defer_marketing_to_eight_in_the_morning(org_a, ana, fake_providers):
    evening = dt.datetime(2025, 6, 10, 19, 30, tzinfo=dt.UTC)  # 21:30 in Ljubljana
    with time_machine.travel(evening, tick=False):
        marketing = offer(org_a, ana)
        urgent = reminder(org_a, ana)
        polite = reminder(org_a, ana, key="staff:r2", respect_quiet_hours=True)
        report = dispatch.dispatch_batch(queue=BULK)
    assert report.sent == 1 and report.deferred == 2
    assert [m.our_id for m in fake_providers] == [urgent.our_id]
    morning = dt.datetime(2025, 6, 11, 6, 0, tzinfo=dt.UTC)  # 08:00 CEST
    for message in (marketing, polite):
        message = refreshed(message)
        assert message.status == "deferred" and message.due_at == morning
        assert message.events.get(kind="deferred").detail["reason"] == "quiet_hours"
    with time_machine.travel(morning - dt.timedelta(minutes=1), tick=False):
        assert dispatch.dispatch_batch(queue=BULK).claimed == 0
    with time_machine.travel(morning, tick=False):
        assert dispatch.dispatch_batch(queue=BULK).sent == 2


def test_quiet_hours_window_arithmetic():
    start, end = dt.time(20), dt.time(8)
    zone = "Europe/Ljubljana"
    at = dt.datetime(2025, 1, 15, 6, 59, tzinfo=dt.UTC)  # 07:59 CET
    assert dispatch.quiet_hours_end(at, zone, start, end) == dt.datetime(
        2025, 1, 15, 7, 0, tzinfo=dt.UTC
    )
    assert dispatch.quiet_hours_end(at.replace(hour=7), zone, start, end) is None
    assert dispatch.quiet_hours_end(at.replace(hour=12), zone, dt.time(12), dt.time(14)) == (
        dt.datetime(2025, 1, 15, 13, 0, tzinfo=dt.UTC)
    )


@pytest.mark.obligation("MSG-9")
def test_a_transactional_message_goes_first_while_a_bulk_backlog_waits(
    org_a, ana, settings, fake_providers
):
    settings.MESSAGING_CLAIM_BATCH = 5
    backlog = [make_contact(org_a, first_name=f"p{i}", phone=f"+3864120000{i}") for i in range(8)]
    for contact in backlog:
        record(contact, channel="all", purpose="marketing")
        offer(org_a, contact)
    urgent = reminder(org_a, ana)
    # Its own lane takes only transactional rows...
    report = dispatch.dispatch_batch(queue=TRANSACTIONAL)
    assert report.claimed == 1 and [m.our_id for m in fake_providers] == [urgent.our_id]
    # ...and the bulk lane claims transactional rows before marketing ones.
    late = reminder(org_a, ana, key="staff:r3")
    assert dispatch.dispatch_batch(queue=BULK).claimed == 5
    assert late.our_id in [m.our_id for m in fake_providers[1:]]
    assert Message.objects.filter(kind="marketing", status="queued").count() == 4


@pytest.mark.obligation("MSG-9")
def test_429_with_retry_after_defers_the_rows_and_blocks_the_account(org_a, ana, fake_providers):
    message = reminder(org_a, ana)
    fake.failures.append(
        ProviderError("throttled", permanent=False, code="E429", retry_after=30, http_status=429)
    )
    before = timezone.now()
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.retried == 1 and fake_providers == []
    message = refreshed(message)
    assert message.status == "deferred" and message.handed_at is None
    assert message.due_at >= before + dt.timedelta(seconds=30)
    assert message.events.get(kind="retry_scheduled").detail["code"] == "E429"
    assert limiter().take("FakeProvider:platform") > 25  # every worker waits for the account
    with time_machine.travel(message.due_at + dt.timedelta(seconds=1), tick=False):
        assert dispatch.dispatch_batch(queue=BULK).sent == 1
    assert refreshed(message).attempts == 2 and len(fake_providers) == 1


def test_a_permanent_error_ends_the_message_with_the_reason(org_a, ana, fake_providers):
    message = reminder(org_a, ana)
    fake.failures.append(ProviderError("bad sender", permanent=True, code="E400"))
    assert dispatch.dispatch_batch(queue=BULK).failed == 1
    message = refreshed(message)
    assert message.status == "failed" and message.error_permanent
    assert message.last_error == "bad sender" and message.final_at
    assert message.events.get(kind="failed").detail["code"] == "E400"


def test_transient_errors_give_up_after_the_attempt_limit(org_a, ana, settings):
    settings.MESSAGING_MAX_ATTEMPTS = 2
    message = reminder(org_a, ana)
    for hours in (1, 2):
        fake.failures.append(ProviderError("503", permanent=False, code="E503", http_status=503))
        with time_machine.travel(DAYTIME + dt.timedelta(hours=hours), tick=False):
            dispatch.dispatch_batch(queue=BULK)
    message = refreshed(message)
    assert message.status == "failed" and "gave up after 2 attempts" in message.last_error


def test_a_lost_answer_is_left_to_the_reconciler_not_retried(org_a, ana, fake_providers):
    message = reminder(org_a, ana)
    fake.failures.append(ProviderError("timeout", permanent=False, uncertain=True))
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.uncertain == 1
    message = refreshed(message)
    assert message.status == "sending" and message.handed_at is not None
    assert dispatch.dispatch_batch(queue=BULK).claimed == 0


@pytest.mark.obligation("MSG-9")
def test_whatsapp_free_text_is_refused_at_dispatch_once_the_window_closed(org_a, ana):
    from messaging.services import whatsapp_inbound_note

    whatsapp_inbound_note(organisation=org_a, contact=ana, at=timezone.now())
    message = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="whatsapp",
        kind="transactional",
        purpose="appointment_reminders",
        text="Hvala, vidimo se jutri.",
        dedupe_key="staff:w1",
    )
    with time_machine.travel(timezone.now() + dt.timedelta(hours=25), tick=False):
        dispatch.dispatch_batch(queue=BULK)
    message = refreshed(message)
    assert message.status == "refused"
    assert message.refusal_reasons == ["whatsapp_session_closed"]


def test_marketing_email_headers_reach_the_provider(org_a, ana, offer_email, fake_providers):
    message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="email",
        kind="marketing",
        purpose="marketing",
        template=offer_email,
        dedupe_key="campaign:2",
    )
    dispatch.dispatch_batch(queue=BULK)
    (sent,) = fake_providers
    assert sent.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert json.loads(Message.objects.get().extras)["headers"] == dict(sent.headers)


@pytest.mark.obligation("MSG-9")
def test_the_reconcile_command_reports_and_its_dry_run_changes_nothing(
    org_a, ana, settings, fake_providers
):
    from django.core.management import call_command

    message = reminder(org_a, ana)
    fake.failures.append(ProviderError("timeout", permanent=False, uncertain=True))
    dispatch.dispatch_batch(queue=BULK)  # the provider never got it, the answer was "lost"
    later = DAYTIME + dt.timedelta(seconds=settings.MESSAGING_RECONCILE_GRACE_SECONDS + 60)
    with time_machine.travel(later, tick=False):
        out = io.StringIO()
        call_command("messages_reconcile", "--dry-run", stdout=out)
        assert json.loads(out.getvalue())["requeued"] == 1
        assert refreshed(message).status == "sending"
        call_command("messages_reconcile", stdout=io.StringIO())
    assert refreshed(message).status == "queued"


@pytest.mark.obligation("MSG-5", "MSG-7")
def test_a_hard_bounced_address_is_refused_as_no_address_at_enqueue_and_dispatch(
    org_a, org_b, ana, offer_email, reminder_email, fake_providers
):
    def email(key, template=offer_email, **kw):
        return message_enqueue(
            organisation=org_a,
            contact=ana,
            channel="email",
            kind=template.kind,
            purpose="marketing" if template.kind == "marketing" else "appointment_reminders",
            template=template,
            dedupe_key=key,
            **kw,
        )

    queued = email("campaign:1")
    # The same address bounced for another clinic only: that is not this clinic's report.
    undeliverable_mark(
        organisation=org_b, kind="email", digest=ana.email_bidx, reason="r", at=timezone.now()
    )
    assert sending_decide(
        organisation=org_a,
        contact_ids=[ana.pk],
        kind="marketing",
        channel="email",
        purpose="marketing",
        now=timezone.now(),
    )[ana.pk].allowed
    # A hard bounce recorded after the message was queued (inbound SES webhook).
    undeliverable_mark(
        organisation=org_a,
        kind="email",
        digest=ana.email_bidx,
        reason="ses_bounce_permanent:General",
        at=timezone.now(),
    )
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.claimed == 1 and report.refused == 1 and report.sent == 0
    assert fake_providers == []
    queued = refreshed(queued)
    assert queued.status == "refused" and queued.refusal_reasons == ["no_address"]

    with pytest.raises(MessageRefused) as refused:
        email("staff:2", reminder_email, variables={"when": "jutri"})
    assert refused.value.reasons == ["no_address"]
    bulk = messages_enqueue_bulk(
        organisation=org_a,
        contacts=[ana],
        channel="email",
        kind="marketing",
        purpose="marketing",
        template=offer_email,
        dedupe_key="campaign:2",
    )
    assert bulk.refused == {ana.pk: ["no_address"]}
    # The phone was never reported: SMS still goes.
    offer(org_a, ana, key="campaign:3", channel="sms")
    assert dispatch.dispatch_batch(queue=BULK).sent == 1


@pytest.mark.obligation("MSG-5")
def test_the_bounce_check_adds_one_query_whatever_the_batch_size(org_a, ana):
    contacts = [ana] + [
        make_contact(org_a, first_name=f"p{i}", email=f"p{i}@example.test") for i in range(12)
    ]
    for contact in contacts[1:]:
        record(contact)
    now = timezone.now()

    def count(decide, ids):
        with CaptureQueriesContext(connection) as queries:
            decide(
                organisation=org_a,
                contact_ids=ids,
                kind="marketing",
                channel="email",
                purpose="marketing",
                now=now,
            )
        return len(queries.captured_queries)

    ids = [c.pk for c in contacts]
    assert count(sending_decide, ids[:1]) == count(eligibility_decide, ids[:1]) + 1
    assert count(sending_decide, ids) == count(sending_decide, ids[:1])
