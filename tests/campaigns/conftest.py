"""Campaign fixtures: a population with one contact per refusal reason, templates, and a
campaign ready for approval."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.services import audience_save, campaign_create
from consent.services import objection_record, suppression_add
from contacts.services import contact_restrict
from messaging.services import template_save
from tests.consent.conftest import make_contact, record

# The outbox-only fake provider on every channel, as in the messaging tests.
from tests.messaging.conftest import fake_providers  # noqa: F401


def patient(org, n, **data):
    data.setdefault("first_name", f"P{n}")
    data.setdefault("phone", f"+3864110{n:04d}")
    data.setdefault("email", f"p{n}@example.test")
    data.setdefault("preferred_language", "sl")
    data.setdefault("relationship_status", "active")
    return make_contact(org, **data)


@pytest.fixture
def population(org_a):
    """One contact per way of (not) receiving a marketing SMS, by name."""
    people = {}
    people["ok"] = patient(org_a, 1)
    record(people["ok"], channel="sms")
    people["ok_all"] = patient(org_a, 2, preferred_language="en")
    record(people["ok_all"], channel="all")
    people["no_consent"] = patient(org_a, 3)
    people["email_only"] = patient(org_a, 4)
    record(people["email_only"], channel="email")
    people["withdrawn"] = patient(org_a, 5)
    record(people["withdrawn"], channel="all")
    record(people["withdrawn"], "withdrawn", channel="sms", source="unsubscribe_link")
    people["suppressed"] = patient(org_a, 6)
    record(people["suppressed"], channel="sms")
    suppression_add(organisation=org_a, phone=people["suppressed"].phone)
    people["restricted"] = patient(org_a, 7)
    record(people["restricted"], channel="sms")
    contact_restrict(contact=people["restricted"], reason="DSR-12")
    people["no_phone"] = patient(org_a, 8, phone="")
    record(people["no_phone"], channel="all")
    people["objection"] = patient(org_a, 9)
    record(people["objection"], channel="sms")
    objection_record(contact=people["objection"], kind="direct_marketing", source="staff")
    # Consent without a relationship, given more than two years ago: lapsed (CON-5).
    people["lapsed"] = patient(org_a, 10, relationship_status="none")
    record(
        people["lapsed"],
        channel="sms",
        recorded_at=timezone.now() - dt.timedelta(days=800),
    )
    people["minor"] = patient(
        org_a, 11, birth_date=timezone.localdate() - dt.timedelta(days=15 * 365)
    )
    record(people["minor"], channel="sms")
    mother = patient(org_a, 13, relationship_status="none", email="", phone="+38641999999")
    people["mother"] = mother  # no consent: excluded as no_consent
    people["minor_ok"] = patient(
        org_a,
        12,
        birth_date=timezone.localdate() - dt.timedelta(days=16 * 365),
        guardian=mother.pk,
    )
    record(people["minor_ok"], channel="sms")
    record(people["minor_ok"], channel="sms", source="guardian")
    return people


@pytest.fixture
def offer_sms_sl(org_a):
    return template_save(
        organisation=org_a,
        name="offer",
        kind="marketing",
        channel="sms",
        language="sl",
        body="{{ first_name }}, ta mesec popust na preglede: https://klinika.example/akcija",
    )


@pytest.fixture
def offer_sms_en(org_a):
    return template_save(
        organisation=org_a,
        name="offer",
        kind="marketing",
        channel="sms",
        language="en",
        body="{{ first_name }}, a discount on check-ups this month: https://klinika.example/akcija",
    )


@pytest.fixture
def offer_email_sl(org_a):
    return template_save(
        organisation=org_a,
        name="offer",
        kind="marketing",
        channel="email",
        language="sl",
        subject="Novost za {{ first_name }}",
        body="Pozdravljeni {{ first_name }}, ta mesec popust.",
    )


@pytest.fixture
def everyone(org_a, staff_a):
    return audience_save(organisation=org_a, name="Everyone", filters={}, actor=staff_a)


@pytest.fixture
def campaign(org_a, staff_a, everyone, offer_sms_sl, offer_sms_en):
    return campaign_create(
        organisation=org_a,
        actor=staff_a,
        name="November check-ups",
        purpose="marketing",
        channels=["sms"],
        audience=everyone,
        templates={("sms", "sl"): offer_sms_sl, ("sms", "en"): offer_sms_en},
    )
