"""Lapse (CON-5): consent given without a live relationship lapses two years later unless
renewed; a daily job writes the withdrawals, idempotently; dry run writes nothing."""

from __future__ import annotations

import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from carely.audit.models import AuditEvent
from carely.celery import app as celery_app
from consent.models import ConsentEntry
from consent.selectors import consent_states
from consent.services import consent_lapse_run
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db

LJUBLJANA = ZoneInfo("Europe/Ljubljana")
GIVEN = dt.datetime(2023, 3, 10, 9, 0, tzinfo=LJUBLJANA)
# Hand-computed: two years after 10 March 2023 09:00 is 10 March 2025 09:00.
DUE = dt.datetime(2025, 3, 10, 9, 0, tzinfo=LJUBLJANA)


@pytest.fixture
def prospect(org_a):
    return make_contact(org_a, first_name="Pia", email="pia@example.test")


@pytest.mark.obligation("CON-5")
def test_consent_without_a_relationship_lapses_two_years_after_it_was_given(org_a, prospect):
    with time_machine.travel(GIVEN, tick=False):
        given = record(prospect, channel="all")
    with time_machine.travel(DUE - dt.timedelta(seconds=1), tick=False):
        assert consent_lapse_run().entries == 0
    with time_machine.travel(DUE, tick=False):
        report = consent_lapse_run()
    assert report.entries == 1 and report.by_organisation == {org_a.pk: 1}
    lapse = ConsentEntry.objects.get(status="withdrawn")
    assert (lapse.source, lapse.cause, lapse.channel) == ("system", "lapsed", "all")
    assert lapse.recorded_at == DUE
    assert "2023-03-10" in lapse.note and f"#{given.pk}" in lapse.note
    assert "two years" in lapse.note
    event = AuditEvent.objects.get(action="consent.lapsed")
    assert event.actor_type == "system" and event.details["contact_ids"] == [prospect.pk]
    with time_machine.travel(DUE + dt.timedelta(days=1), tick=False):
        assert consent_lapse_run().entries == 0  # idempotent
    assert ConsentEntry.objects.count() == 2


@pytest.mark.obligation("CON-5")
def test_renewal_a_live_relationship_or_a_renewed_channel_keep_consent(org_a, prospect, ana):
    with time_machine.travel(GIVEN, tick=False):
        record(prospect, channel="all")
        record(ana, channel="all")  # ana has an active relationship
    with time_machine.travel(GIVEN + dt.timedelta(days=400), tick=False):
        renewed = record(prospect, channel="sms")  # renewed for SMS only
    with time_machine.travel(DUE, tick=False):
        consent_lapse_run()
    lapses = ConsentEntry.objects.filter(status="withdrawn").order_by("channel")
    assert [(e.contact_id, e.channel) for e in lapses] == [
        (prospect.pk, "email"),
        (prospect.pk, "whatsapp"),
    ]
    state = consent_states(organisation=org_a, contact_ids=[prospect.pk])[prospect.pk]
    assert state[("marketing", "sms")].current.id == renewed.pk


@pytest.mark.obligation("CON-5")
def test_the_command_previews_with_dry_run_and_runs_daily_on_beat(org_a, prospect):
    with time_machine.travel(GIVEN, tick=False):
        record(prospect, channel="email")
    out = io.StringIO()
    with time_machine.travel(DUE, tick=False):
        call_command("consent_lapse", "--dry-run", stdout=out)
        assert json.loads(out.getvalue())["entries"] == 1
        assert not ConsentEntry.objects.filter(status="withdrawn").exists()
        out = io.StringIO()
        call_command("consent_lapse", stdout=out)
    assert json.loads(out.getvalue()) == {
        "dry_run": False,
        "now": DUE.astimezone(dt.UTC).isoformat(),
        "entries": 1,
        "by_organisation": {str(org_a.pk): 1},
    }
    schedule = celery_app.conf.beat_schedule["consent-lapse"]
    assert schedule["task"] == "consent.tasks.consent_lapse_run"
    assert schedule["schedule"] == dt.timedelta(hours=24)
