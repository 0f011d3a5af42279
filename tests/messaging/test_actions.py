"""Performed actions reported back (MSG-6): ``POST /api/v1/messages/{id}/actions/`` records an
``action`` event once per (message, action), for messages that reached the person only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from messaging.models import Message, MessageEvent
from messaging.services import ActionInvalid, message_action_record, message_enqueue
from tests.consent.conftest import api_client

pytestmark = pytest.mark.django_db


def url(message) -> str:
    return f"/api/v1/messages/{message.pk}/actions/"


@pytest.fixture
def sent(org_a, ana, reminder_sms):
    message = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        template=reminder_sms,
        variables={"when": "jutri ob 9.00"},
        dedupe_key="test:actions",
    )
    Message.objects.filter(pk=message.pk).update(status="delivered", sent_at=timezone.now())
    message.refresh_from_db()
    return message


@pytest.mark.obligation("MSG-6")
def test_an_action_is_recorded_once_201_then_200(org_a, sent):
    api = api_client(org_a, scopes=["messages:write"])
    at = timezone.now() - dt.timedelta(minutes=30)
    first = api.post(
        url(sent), {"action": "appointment_booked", "at": at.isoformat()}, format="json"
    )
    assert first.status_code == 201, first.json()
    assert first.json()["action"] == "appointment_booked"
    assert first.json()["message"] == sent.pk
    again = api.post(url(sent), {"action": "appointment_booked"}, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    event = MessageEvent.objects.get(message=sent, kind="action")
    assert event.source == "api" and event.detail == {"action": "appointment_booked"}
    assert event.provider_event_key == "action:appointment_booked" and event.at == at
    # Another action on the same message is its own event.
    other = api.post(url(sent), {"action": "Voucher-Used"}, format="json")
    assert other.status_code == 201 and other.json()["action"] == "voucher-used"
    assert MessageEvent.objects.filter(message=sent, kind="action").count() == 2
    # It shows in the message's timeline.
    reader = api_client(org_a, scopes=["messages:read"])
    timeline = reader.get(f"/api/v1/messages/{sent.pk}/").json()["timeline"]
    assert [e["detail"] for e in timeline if e["kind"] == "action"] == [
        {"action": "appointment_booked"},
        {"action": "voucher-used"},
    ]


def test_a_bad_action_or_time_names_the_field(org_a, sent):
    api = api_client(org_a, scopes=["messages:write"])
    for bad in ("", "booked appointment", "x" * 41, "_booked", "naročilo"):
        response = api.post(url(sent), {"action": bad}, format="json")
        assert response.status_code == 400, bad
        assert response.json()["errors"][0]["field"] == "action"
    future = timezone.now() + dt.timedelta(hours=1)
    response = api.post(url(sent), {"action": "booked", "at": future.isoformat()}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "at"
    assert "future" in response.json()["errors"][0]["message"]
    assert not MessageEvent.objects.filter(message=sent, kind="action").exists()


@pytest.mark.obligation("MSG-6", "MSG-10")
def test_a_message_that_never_reached_the_person_takes_no_action(org_a, sent):
    Message.objects.filter(pk=sent.pk).update(status="refused", sent_at=None)
    api = api_client(org_a, scopes=["messages:write"])
    response = api.post(url(sent), {"action": "appointment_booked"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "message_not_sent" and "refused" in response.json()["detail"]
    assert not MessageEvent.objects.filter(message=sent, kind="action").exists()


@pytest.mark.obligation("TEN-1", "SEC-3")
def test_scope_and_tenancy(org_a, org_b, sent):
    read_only = api_client(org_a, scopes=["messages:read"])
    assert read_only.post(url(sent), {"action": "booked"}, format="json").status_code == 403
    stranger = api_client(org_b)
    assert stranger.post(url(sent), {"action": "booked"}, format="json").status_code == 404
    missing = api_client(org_a).post(
        "/api/v1/messages/999999/actions/", {"action": "booked"}, format="json"
    )
    assert missing.status_code == 404
    assert not MessageEvent.objects.filter(kind="action").exists()


def test_the_service_refuses_a_naive_time_and_returns_the_first_event(sent):
    with pytest.raises(ActionInvalid) as caught:
        message_action_record(message=sent, action="booked", at=dt.datetime(2026, 1, 1, 9, 0))
    assert set(caught.value.problems) == {"at"}
    event, created = message_action_record(message=sent, action="booked")
    again, created_again = message_action_record(message=sent, action="BOOKED")
    assert created and not created_again and again.pk == event.pk
