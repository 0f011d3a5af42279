"""The audience count (MSG-4): numbers by reason, the same reasons dispatch would give."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.audiences import (
    AudienceInvalid,
    audience_count,
    audience_final_queryset,
    combine_channels,
    contact_channel_reasons,
    filters_clean,
)
from tests.campaigns.conftest import patient
from tests.consent.conftest import record

EXPECTED_SMS = {
    "ok": None,
    "ok_all": None,
    "no_consent": "no_consent",
    "email_only": "no_consent",
    "withdrawn": "withdrawn",
    "suppressed": "suppressed",
    "restricted": "restricted",
    "no_phone": "no_address",
    "objection": "objection",
    "lapsed": "lapsed",
    "minor": "minor_without_guardian_consent",
    "minor_ok": None,
    "mother": "no_consent",
}


@pytest.mark.obligation("MSG-4", "CON-3")
def test_count_by_reason_for_one_channel(org_a, population):
    count = audience_count(organisation=org_a, filters={}, purpose="marketing", channels=["sms"])
    assert count.matched == len(population)
    assert count.eligible == 3
    assert count.by_channel == {"sms": 3}
    expected: dict[str, int] = {}
    for reason in EXPECTED_SMS.values():
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert count.excluded == expected
    assert count.matched == count.eligible + count.excluded_total


@pytest.mark.obligation("MSG-4", "MSG-5")
@pytest.mark.parametrize("channels", [["sms"], ["email"], ["whatsapp", "sms", "email"]])
def test_count_agrees_with_the_dispatch_decision_contact_by_contact(org_a, population, channels):
    """The grouped SQL forecast and eligibility_decide (what dispatch asks) never disagree."""
    ids = [c.pk for c in population.values()]
    decided = contact_channel_reasons(
        organisation=org_a, contact_ids=ids, purpose="marketing", channels=channels
    )
    expected_eligible = 0
    expected_excluded: dict[str, int] = {}
    for per_channel in decided.values():
        channel, reason = combine_channels(per_channel, channels)
        if channel:
            expected_eligible += 1
        else:
            expected_excluded[reason] = expected_excluded.get(reason, 0) + 1
    count = audience_count(organisation=org_a, filters={}, purpose="marketing", channels=channels)
    assert count.eligible == expected_eligible
    assert count.excluded == expected_excluded


@pytest.mark.obligation("MSG-4")
def test_preference_order_counts_each_contact_once_on_its_first_channel(org_a, population):
    count = audience_count(
        organisation=org_a, filters={}, purpose="marketing", channels=["email", "sms"]
    )
    # e-mail: ok_all, email_only, no_phone and withdrawn (who withdrew SMS only); SMS: ok and
    # minor_ok, who have no e-mail consent.
    assert count.by_channel == {"email": 4, "sms": 2}
    assert count.eligible == 6
    assert count.matched == len(population)


@pytest.mark.obligation("CON-5")
def test_lapse_boundary_matches_the_ledger_rule(org_a):
    now = timezone.now()
    just = patient(org_a, 50, relationship_status="none")
    record(just, channel="sms", recorded_at=now - dt.timedelta(days=731))
    not_yet = patient(org_a, 51, relationship_status="none")
    record(not_yet, channel="sms", recorded_at=now - dt.timedelta(days=700))
    count = audience_count(
        organisation=org_a, filters={}, purpose="marketing", channels=["sms"], now=now
    )
    assert count.excluded == {"lapsed": 1}
    assert count.eligible == 1


def test_attribute_filters(org_a):
    a = patient(
        org_a,
        60,
        preferred_language="en",
        gender="female",
        birth_date=dt.date(1990, 5, 1),
        source="spring-fair",
    )
    b = patient(org_a, 61, preferred_language="sl", gender="male", birth_date=dt.date(1950, 1, 1))
    c = patient(org_a, 62, preferred_language="", gender="female")  # reads the clinic's "sl"

    def ids(filters):
        clean = filters_clean(filters, organisation=org_a)
        return set(
            audience_final_queryset(organisation=org_a, filters=clean).values_list("pk", flat=True)
        )

    assert ids({"languages": ["sl"]}) == {b.pk, c.pk}
    assert ids({"genders": ["female"]}) == {a.pk, c.pk}
    assert ids({"genders": ["female"], "age_min": 30, "age_max": 40}) == {a.pk}
    assert ids({"age_min": 65}) == {b.pk}
    assert ids({"sources": ["spring-fair"]}) == {a.pk}


def test_consent_state_filter(org_a, population):
    clean = filters_clean(
        {"consent": [{"purpose": "marketing", "channel": "sms", "state": "withdrawn"}]},
        organisation=org_a,
    )
    found = set(
        audience_final_queryset(organisation=org_a, filters=clean).values_list("pk", flat=True)
    )
    # The objection to direct marketing withdrew every channel (CON-6).
    assert found == {population["withdrawn"].pk, population["objection"].pk}


def test_filter_errors_name_the_field_and_the_fix(org_a):
    with pytest.raises(AudienceInvalid) as caught:
        filters_clean(
            {
                "genders": ["woman"],
                "age_min": "x",
                "colour": "blue",
                "relationship_started_from": "1.1.2024",
                "consent": [{"purpose": "nope"}],
            },
            organisation=org_a,
        )
    problems = caught.value.problems
    assert "female" in problems["genders"]
    assert "whole number" in problems["age_min"]
    assert "not a filter field" in problems["colour"]
    assert "YYYY-MM-DD" in problems["relationship_started_from"]
    assert "no purpose 'nope'" in problems["consent[1]"]


def test_count_is_scoped_to_the_organisation(org_a, org_b, population):
    other = patient(org_b, 1)
    record(other, channel="sms")
    count = audience_count(organisation=org_b, filters={}, purpose="marketing", channels=["sms"])
    assert count.matched == 1 and count.eligible == 1


def test_tag_filters(org_a):
    from contacts.services import contact_tags_set

    a = patient(org_a, 70)
    b = patient(org_a, 71)
    c = patient(org_a, 72)
    contact_tags_set(contact=a, names=["Diabetes check", "VIP"])
    contact_tags_set(contact=b, names=["diabetes check"])

    def ids(filters):
        clean = filters_clean(filters, organisation=org_a)
        return set(
            audience_final_queryset(organisation=org_a, filters=clean).values_list("pk", flat=True)
        )

    assert ids({"tags_any": ["DIABETES CHECK"]}) == {a.pk, b.pk}
    assert ids({"tags_all": ["diabetes check", "vip"]}) == {a.pk}
    assert ids({"tags_none": ["vip"]}) == {b.pk, c.pk}
