"""Pause and cancel stop every message not yet handed to the provider (MSG-2, MSG-4)."""

from __future__ import annotations

import pytest

from campaigns.materialise import campaign_materialise, campaigns_complete
from campaigns.models import State
from campaigns.services import (
    campaign_approve,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_submit,
)
from consent.services import consent_withdraw
from messaging import dispatch
from messaging.models import Message
from messaging.providers import fake

BULK = "messaging-bulk"


@pytest.fixture
def sending(campaign, staff_a, admin_a, population, org_a):
    from messaging.services import provider_account_for

    account = provider_account_for(org_a)
    account.quiet_hours_enabled = False
    account.save()
    campaign_submit(campaign=campaign, actor=staff_a)
    campaign_approve(campaign=campaign, actor=admin_a)
    campaign_materialise(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.queued == 3
    return campaign


def statuses(campaign):
    return sorted(Message.objects.filter(campaign_id=campaign.pk).values_list("status", flat=True))


@pytest.mark.obligation("MSG-4")
def test_pause_holds_pending_messages_and_resume_sends_them(sending, admin_a):
    campaign_pause(campaign=sending, actor=admin_a)
    assert statuses(sending) == ["held"] * 3
    assert dispatch.dispatch_batch(queue=BULK).claimed == 0
    assert fake.outbox == []
    campaign_resume(campaign=sending, actor=admin_a)
    sending.refresh_from_db()
    assert sending.state == State.SENDING
    dispatch.dispatch_batch(queue=BULK)
    assert statuses(sending) == ["sent"] * 3
    assert len(fake.outbox) == 3
    assert campaigns_complete() == 1
    sending.refresh_from_db()
    assert sending.state == State.COMPLETED


@pytest.mark.obligation("MSG-4")
def test_cancel_ends_pending_messages(sending, admin_a):
    campaign_cancel(campaign=sending, actor=admin_a, note="Wrong price in the text")
    assert statuses(sending) == ["cancelled"] * 3
    dispatch.dispatch_batch(queue=BULK)
    assert fake.outbox == []
    events = (
        Message.objects.filter(campaign_id=sending.pk).first().events.values_list("kind", "detail")
    )
    assert ("cancelled", {"reason": "campaign_cancelled", "campaign": sending.pk}) in list(events)


@pytest.mark.obligation("MSG-4", "MSG-9")
def test_a_pause_after_a_worker_claimed_the_rows_still_stops_them(sending, admin_a, monkeypatch):
    """The worker claimed the rows, then the campaign was paused before the hand-over: the
    hand-over's own check of the campaign holds them back."""
    original = dispatch._quiet_hours

    def pause_then_continue(*args, **kwargs):
        campaign_pause(campaign=sending, actor=admin_a)
        return original(*args, **kwargs)

    monkeypatch.setattr(dispatch, "_quiet_hours", pause_then_continue)
    dispatch.dispatch_batch(queue=BULK)
    assert fake.outbox == []
    assert statuses(sending) == ["held"] * 3


@pytest.mark.obligation("MSG-4", "MSG-5", "CON-2")
def test_withdrawn_mid_campaign_is_not_sent_and_the_reason_is_kept(sending, population):
    consent_withdraw(
        contact=population["ok"], purpose="marketing", channel="sms", source="unsubscribe_link"
    )
    dispatch.dispatch_batch(queue=BULK)
    assert len(fake.outbox) == 2
    message = Message.objects.get(campaign_id=sending.pk, contact=population["ok"])
    assert message.status in ("cancelled", "refused")
    assert message.last_error.endswith("withdrawn") or "withdrawn" in message.refusal_reasons


@pytest.mark.obligation("MSG-4")
def test_over_the_frequency_cap_is_not_sent(sending, org_a, population):
    from messaging.receipts import MessagingOptions

    options, _ = MessagingOptions.objects.get_or_create(organisation=org_a)
    options.marketing_cap_count = 0 + 1
    options.save()
    # Each contact already had one marketing message handed over this month.
    from django.utils import timezone

    for contact in (population["ok"], population["ok_all"]):
        Message.objects.create(
            organisation=org_a,
            contact=contact,
            channel="email",
            kind="marketing",
            purpose="marketing",
            body="earlier",
            dedupe_key="campaign:earlier",
            status="delivered",
            handed_at=timezone.now(),
        )
    dispatch.dispatch_batch(queue=BULK)
    capped = Message.objects.filter(campaign_id=sending.pk, status="refused")
    assert set(capped.values_list("contact_id", flat=True)) == {
        population["ok"].pk,
        population["ok_all"].pk,
    }
    assert all(m.refusal_reasons == ["frequency_cap"] for m in capped)
    assert len(fake.outbox) == 1


@pytest.mark.obligation("CON-2")
def test_a_withdrawal_while_paused_cancels_the_held_message_at_once(
    sending, admin_a, population, django_capture_on_commit_callbacks
):
    campaign_pause(campaign=sending, actor=admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        consent_withdraw(
            contact=population["ok"], purpose="marketing", channel="sms", source="unsubscribe_link"
        )
    message = Message.objects.get(campaign_id=sending.pk, contact=population["ok"])
    assert message.status == "cancelled"
    assert message.last_error == "withdrawn"
    campaign_resume(campaign=sending, actor=admin_a)
    dispatch.dispatch_batch(queue=BULK)
    assert len(fake.outbox) == 2


@pytest.mark.obligation("MSG-4")
def test_a_large_pause_moves_the_rest_later_and_dispatch_holds_them_meanwhile(
    sending, admin_a, monkeypatch
):
    """Inside the request only the first INLINE_MOVE_LIMIT rows move; dispatch already holds
    the others (the campaign is paused), and the settle task or the tick moves the rest."""
    from campaigns import services, tasks

    monkeypatch.setattr(services, "INLINE_MOVE_LIMIT", 1)
    monkeypatch.setattr(services, "_BATCH", 1)
    queued_settles = []
    monkeypatch.setattr(tasks.campaign_messages_settle, "delay", queued_settles.append)
    campaign_pause(campaign=sending, actor=admin_a)
    assert statuses(sending).count("held") == 1
    dispatch.dispatch_batch(queue=BULK)
    assert fake.outbox == []
    assert statuses(sending) == ["held"] * 3
    # Cancel: one row inline, the settle task the rest.
    campaign_cancel(campaign=sending, actor=admin_a)
    assert statuses(sending).count("cancelled") == 1
    tasks.campaign_messages_settle(sending.pk)
    assert statuses(sending) == ["cancelled"] * 3


def test_the_tick_settles_what_a_lost_task_left(sending, admin_a, monkeypatch):
    from campaigns import services, tasks

    monkeypatch.setattr(services, "INLINE_MOVE_LIMIT", 1)
    monkeypatch.setattr(services, "_BATCH", 1)
    monkeypatch.setattr(tasks.campaign_messages_settle, "delay", lambda pk: None)  # lost
    campaign_pause(campaign=sending, actor=admin_a)
    assert statuses(sending).count("held") == 1
    monkeypatch.setattr(services, "INLINE_MOVE_LIMIT", 10_000)
    monkeypatch.setattr(tasks.campaign_materialise, "delay", lambda pk: None)
    report = tasks.campaigns_tick()
    assert report["unsettled"] == 0
    assert statuses(sending) == ["held"] * 3
