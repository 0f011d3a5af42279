"""Campaign state machine, four-eyes approval, materialisation (MSG-2, MSG-4, MSG-9)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns import materialise as materialise_module
from campaigns.materialise import campaign_materialise
from campaigns.models import Campaign, CampaignStep, State
from campaigns.services import (
    ApprovalRefused,
    CampaignInvalid,
    CampaignStateError,
    campaign_approve,
    campaign_reject,
    campaign_submit,
    campaign_update,
)
from carely.audit.models import AuditEvent
from messaging.models import Message


def approved(campaign, author, approver):
    campaign_submit(campaign=campaign, actor=author)
    return campaign_approve(campaign=campaign, actor=approver)


@pytest.mark.obligation("MSG-2")
def test_the_author_cannot_approve_their_own_campaign(campaign, staff_a, org_a):
    from carely.orgs.roles import Role
    from tests.factories import MembershipFactory

    author_admin = MembershipFactory(organisation=org_a, role=Role.ORG_ADMIN).user
    campaign.created_by = author_admin
    campaign.save(update_fields=["created_by"])
    campaign_submit(campaign=campaign, actor=author_admin)
    with pytest.raises(ApprovalRefused, match="someone else must approve"):
        campaign_approve(campaign=campaign, actor=author_admin)
    campaign.refresh_from_db()
    assert campaign.state == State.AWAITING_APPROVAL


@pytest.mark.obligation("MSG-2")
def test_staff_cannot_approve_and_the_submitter_cannot_either(campaign, staff_a, org_a, admin_a):
    from carely.orgs.roles import Role
    from tests.factories import MembershipFactory

    colleague = MembershipFactory(organisation=org_a, role=Role.STAFF).user
    campaign_submit(campaign=campaign, actor=staff_a)
    with pytest.raises(ApprovalRefused, match="role cannot approve"):
        campaign_approve(campaign=campaign, actor=colleague)
    approved_campaign = campaign_approve(campaign=campaign, actor=admin_a)
    assert approved_campaign.state == State.SCHEDULED
    assert approved_campaign.approved_by == admin_a
    kinds = list(CampaignStep.objects.filter(campaign=campaign).values_list("kind", flat=True))
    assert kinds == ["created", "submitted", "approved"]
    assert AuditEvent.objects.filter(
        action="campaign.approved", object_id=str(campaign.pk)
    ).exists()


def test_admin_of_another_organisation_cannot_approve(campaign, staff_a, admin_b):
    campaign_submit(campaign=campaign, actor=staff_a)
    with pytest.raises(ApprovalRefused):
        campaign_approve(campaign=campaign, actor=admin_b)


def test_reject_sends_it_back_with_the_reason_and_only_drafts_change(campaign, staff_a, admin_a):
    campaign_submit(campaign=campaign, actor=staff_a)
    with pytest.raises(CampaignStateError, match="only when draft"):
        campaign_update(campaign=campaign, actor=staff_a, name="Changed after submitting")
    with pytest.raises(CampaignInvalid):
        campaign_reject(campaign=campaign, actor=admin_a, note=" ")
    campaign_reject(campaign=campaign, actor=admin_a, note="Add the price to the text.")
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    assert CampaignStep.objects.filter(campaign=campaign, kind="rejected").get().note == (
        "Add the price to the text."
    )


def test_submit_names_what_is_missing(org_a, staff_a, everyone, offer_sms_en):
    from campaigns.services import campaign_create

    draft = campaign_create(
        organisation=org_a,
        actor=staff_a,
        name="Half done",
        purpose="marketing",
        channels=["sms"],
        audience=everyone,
        schedule="at",
        send_at=timezone.now() - dt.timedelta(hours=1),
        templates={("sms", "en"): offer_sms_en},
    )
    with pytest.raises(CampaignInvalid) as caught:
        campaign_submit(campaign=draft, actor=staff_a)
    assert "fallback language" in caught.value.problems["templates.sms"]
    assert "has passed" in caught.value.problems["send_at"]


@pytest.mark.obligation("MSG-4", "CON-3")
def test_materialisation_queues_the_eligible_and_counts_the_rest_by_reason(
    campaign, staff_a, admin_a, population
):
    approved(campaign, staff_a, admin_a)
    report = campaign_materialise(campaign.pk, batch=5)
    assert report.finished
    campaign.refresh_from_db()
    assert campaign.state == State.SENDING
    queued = Message.objects.filter(campaign_id=campaign.pk)
    assert set(queued.values_list("contact_id", flat=True)) == {
        population[k].pk for k in ("ok", "ok_all", "minor_ok")
    }
    assert campaign.targeted == len(population)
    assert campaign.queued == 3
    assert campaign.exclusions == {
        "no_consent": 3,
        "withdrawn": 1,
        "suppressed": 1,
        "restricted": 1,
        "no_address": 1,
        "objection": 1,
        "lapsed": 1,
        "minor_without_guardian_consent": 1,
    }
    # The English speaker got the English template, the others the Slovenian one.
    english = queued.get(contact=population["ok_all"])
    assert english.body.startswith("P2, a discount")
    assert queued.get(contact=population["ok"]).body.startswith("P1, ta mesec")


@pytest.mark.obligation("MSG-9")
def test_a_restart_after_a_crash_creates_no_second_row(campaign, staff_a, admin_a, population):
    approved(campaign, staff_a, admin_a)
    first = campaign_materialise(campaign.pk, batch=4, stop_after_batches=1)
    assert not first.finished
    done_so_far = Message.objects.filter(campaign_id=campaign.pk).count()

    # The next batch dies half-way: its rows and its cursor roll back together.
    real = materialise_module._count

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("worker killed")

    materialise_module._count = crash
    try:
        with pytest.raises(RuntimeError):
            campaign_materialise(campaign.pk, batch=4)
    finally:
        materialise_module._count = real
        from django.core.cache import cache

        cache.delete(materialise_module._lease_key(campaign.pk))
    assert Message.objects.filter(campaign_id=campaign.pk).count() == done_so_far

    # Rerun from the start as well as from the cursor: still one row per eligible contact.
    Campaign.objects.filter(pk=campaign.pk).update(materialised_through=0)
    campaign_materialise(campaign.pk, batch=4)
    campaign_materialise(campaign.pk, batch=4)
    rows = list(
        Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", flat=True)
    )
    assert len(rows) == len(set(rows)) == 3


def test_materialisation_is_one_message_per_contact_across_channels(
    org_a, staff_a, admin_a, everyone, population, offer_sms_sl, offer_email_sl
):
    from campaigns.services import campaign_create

    both = campaign_create(
        organisation=org_a,
        actor=staff_a,
        name="Either way",
        purpose="marketing",
        channels=["email", "sms"],
        audience=everyone,
        templates={("sms", "sl"): offer_sms_sl, ("email", "sl"): offer_email_sl},
    )
    approved(both, staff_a, admin_a)
    campaign_materialise(both.pk, batch=3)
    rows = list(Message.objects.filter(campaign_id=both.pk).values_list("contact_id", "channel"))
    assert len({c for c, _ in rows}) == len(rows) == 6
    both.refresh_from_db()
    assert both.queued_by_channel == {"email": 4, "sms": 2}


def test_a_paused_campaign_is_not_materialised(campaign, staff_a, admin_a, population):
    from campaigns.services import campaign_pause

    approved(campaign, staff_a, admin_a)
    campaign_pause(campaign=campaign, actor=admin_a)
    report = campaign_materialise(campaign.pk)
    assert report.stopped_because == State.PAUSED
    assert not Message.objects.filter(campaign_id=campaign.pk).exists()


def test_window_schedule_spreads_due_times(org_a, staff_a, admin_a, everyone, offer_sms_sl):
    from campaigns.services import campaign_create
    from tests.campaigns.conftest import patient
    from tests.consent.conftest import record

    for n in range(40):
        record(patient(org_a, 100 + n), channel="sms")
    start = timezone.now() + dt.timedelta(hours=1)
    spread = campaign_create(
        organisation=org_a,
        actor=staff_a,
        name="Spread",
        purpose="marketing",
        channels=["sms"],
        audience=everyone,
        schedule="window",
        send_at=start,
        send_until=start + dt.timedelta(hours=4),
        templates={("sms", "sl"): offer_sms_sl},
    )
    approved(spread, staff_a, admin_a)
    with transaction.atomic():
        Campaign.objects.filter(pk=spread.pk).update(
            send_at=timezone.now() - dt.timedelta(seconds=1)
        )
    spread.refresh_from_db()
    spread.send_until = spread.send_at + dt.timedelta(hours=4)
    spread.save(update_fields=["send_until"])
    campaign_materialise(spread.pk, batch=10)
    dues = sorted(Message.objects.filter(campaign_id=spread.pk).values_list("due_at", flat=True))
    assert len(dues) == 40
    assert dues[-1] - dues[0] > dt.timedelta(hours=3)
    assert len(set(dues)) >= 20


def test_materialisation_queries_do_not_grow_with_the_batch(
    org_a, staff_a, admin_a, everyone, offer_sms_sl, django_assert_max_num_queries
):
    """One batch costs the same number of queries for 5 contacts as for 60: no contact is
    loaded or decided one at a time (a deferred column read per contact would show here)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns.links import click_url_maker
    from campaigns.services import campaign_create
    from tests.campaigns.conftest import patient
    from tests.consent.conftest import record

    def run(count, first):
        for n in range(count):
            record(patient(org_a, first + n), channel="sms")
        campaign = campaign_create(
            organisation=org_a,
            actor=staff_a,
            name=f"Size {count}",
            purpose="marketing",
            channels=["sms"],
            audience=everyone,
            templates={("sms", "sl"): offer_sms_sl},
        )
        approved(campaign, staff_a, admin_a)
        with CaptureQueriesContext(connection) as queries:
            campaign_materialise(campaign.pk, batch=1000, track_links=click_url_maker(campaign.pk))
        assert Message.objects.filter(campaign_id=campaign.pk).count() > 0
        return len(queries)

    small = run(5, 200)
    large = run(60, 300)
    assert large <= small + 2  # the keyset pagination may take one more page


def test_an_approval_stands_when_the_broker_cannot_take_the_task(
    campaign, staff_a, admin_a, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    from campaigns import tasks

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.campaign_materialise, "delay", broken)
    campaign_submit(campaign=campaign, actor=staff_a)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_approve(campaign=campaign, actor=admin_a)
    campaign.refresh_from_db()
    assert campaign.state == State.SCHEDULED  # campaigns_tick starts it
    assert "the tick will start it" in caplog.text
