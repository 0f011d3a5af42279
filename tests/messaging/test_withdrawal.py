"""A withdrawal stops queued messages at once (CON-2): the consent_withdrawn receiver cancels the
contact's waiting marketing messages for that purpose and those channels, with the reason in the
timeline; dispatch's own decision would refuse them anyway (MSG-5)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client

from consent.links import unsubscribe_url
from consent.models import ObjectionKind
from consent.services import consent_withdraw, objection_record
from messaging import dispatch
from messaging.services import message_enqueue
from tests.consent.conftest import record

pytestmark = pytest.mark.django_db

BULK = "messaging-bulk"
DAYTIME = dt.datetime(2025, 6, 10, 8, 0, tzinfo=dt.UTC)  # 10:00 in Ljubljana: no quiet hours


@pytest.fixture(autouse=True)
def _daytime():
    with time_machine.travel(DAYTIME, tick=True):
        yield


def queue(org, contact, key, *, kind="marketing", purpose="marketing", template=None):
    text = "Popust ta mesec." if kind == "marketing" else "Termin jutri ob 9h."
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel=template.channel if template else "sms",
        kind=kind,
        purpose=purpose,
        template=template,
        text=None if template else text,
        dedupe_key=key,
    )


def status(message):
    message.refresh_from_db()
    return message.status


@pytest.mark.obligation("CON-2", "MSG-5", "MSG-6")
def test_unsubscribe_link_cancels_queued_marketing_for_that_purpose_at_once(
    org_a, ana, offer_email, fake_providers, django_capture_on_commit_callbacks
):
    record(ana, purpose="surveys")
    offer_sms = queue(org_a, ana, "c:1")
    offer_mail = queue(org_a, ana, "c:2", template=offer_email)
    survey = queue(org_a, ana, "c:3", purpose="surveys")
    reminder = queue(org_a, ana, "r:1", kind="transactional", purpose="appointment_reminders")

    path = re.sub(r"^https?://[^/]+", "", unsubscribe_url(ana, "marketing"))
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            path,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    assert response.status_code == 200

    for cancelled in (offer_sms, offer_mail):
        assert status(cancelled) == "cancelled"
        assert cancelled.last_error == "withdrawn"
        event = cancelled.events.get(kind="cancelled")
        assert event.detail == {"reason": "withdrawn"} and event.source == "consent"
    # Another purpose's consent and the contract's reminders are not the link's to stop.
    assert status(survey) == "queued" and status(reminder) == "queued"

    report = dispatch.dispatch_batch(queue=BULK)
    assert report.claimed == 2 and report.sent == 2
    assert {m.our_id for m in fake_providers} == {survey.our_id, reminder.our_id}


@pytest.mark.obligation("CON-2", "MSG-5")
def test_without_the_receiver_dispatch_still_refuses_the_withdrawn_message(
    org_a, ana, fake_providers
):
    message = queue(org_a, ana, "c:1")
    # No on-commit callbacks run here, so the signal is never sent: dispatch is the guarantee.
    consent_withdraw(contact=ana, purpose="marketing", channel="sms", source="staff")
    assert status(message) == "queued"
    report = dispatch.dispatch_batch(queue=BULK)
    assert report.refused == 1 and fake_providers == []
    message.refresh_from_db()
    assert message.status == "refused" and message.refusal_reasons == ["withdrawn"]


@pytest.mark.obligation("CON-2", "CON-6")
def test_an_objection_cancels_with_its_own_reason_and_only_on_the_withdrawn_channels(
    org_a, ana, django_capture_on_commit_callbacks
):
    sms = queue(org_a, ana, "c:1")
    with django_capture_on_commit_callbacks(execute=True):
        consent_withdraw(contact=ana, purpose="marketing", channel="email", source="staff")
    assert status(sms) == "queued"  # an e-mail withdrawal leaves the SMS
    with django_capture_on_commit_callbacks(execute=True):
        objection_record(contact=ana, kind=ObjectionKind.DIRECT_MARKETING, source="staff")
    assert status(sms) == "cancelled"
    assert sms.events.get(kind="cancelled").detail == {"reason": "objection"}
