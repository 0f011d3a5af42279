"""Idle sessions end after SESSION_IDLE_TIMEOUT without a request (SEC-1)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import login

pytestmark = pytest.mark.obligation("SEC-1")

START = dt.datetime(2025, 6, 2, 8, 0, tzinfo=dt.UTC)


def test_default_idle_timeout_is_thirty_minutes(settings):
    assert dt.timedelta(minutes=30) == settings.SESSION_IDLE_TIMEOUT


def test_29_minutes_idle_keeps_the_session(client, staff_a, time_machine):
    time_machine.move_to(START, tick=False)
    login(client, staff_a)
    assert client.get("/").status_code == 200
    time_machine.move_to(START + dt.timedelta(minutes=29), tick=False)
    assert client.get("/").status_code == 200
    # Activity restarts the clock: another 29 minutes are fine too.
    time_machine.move_to(START + dt.timedelta(minutes=58), tick=False)
    assert client.get("/").status_code == 200


def test_31_minutes_idle_signs_out_with_a_calm_message(client, staff_a, time_machine):
    time_machine.move_to(START, tick=False)
    login(client, staff_a)
    assert client.get("/").status_code == 200
    time_machine.move_to(START + dt.timedelta(minutes=31), tick=False)
    response = client.get("/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert (
        "You were signed out after 30 minutes without activity, to protect patient data. "
        "Please sign in again."
    ) in page.content.decode()


def test_idle_minutes_follow_the_setting(client, staff_a, time_machine, settings):
    settings.SESSION_IDLE_TIMEOUT = dt.timedelta(minutes=10)
    time_machine.move_to(START, tick=False)
    login(client, staff_a)
    client.get("/")
    time_machine.move_to(START + dt.timedelta(minutes=11), tick=False)
    response = client.get("/", follow=True)
    assert "signed out after 10 minutes" in response.content.decode()


def test_health_probes_do_not_count_as_activity(client, staff_a, time_machine):
    time_machine.move_to(START, tick=False)
    login(client, staff_a)
    client.get("/")
    time_machine.move_to(START + dt.timedelta(minutes=20), tick=False)
    assert client.get("/healthz").status_code == 200
    time_machine.move_to(START + dt.timedelta(minutes=31), tick=False)
    assert client.get("/").status_code == 302
