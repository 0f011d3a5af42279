"""The eligibility decision (CON-3, CON-4, CON-5, CON-6, CON-7, CNT-4, CNT-6, DSR-11, MSG-5,
TEN-3): every refusal reason, the legal basis and the entry behind it, fixed query count."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from carely.orgs.services import organisation_suspend
from carely.privacy.registry import Subject, registry
from consent.eligibility import Decision, EligibilityQueryError, eligibility_decide
from consent.models import ConsentEntry, Purpose
from consent.services import (
    consent_withdraw,
    objection_grounds_record,
    objection_record,
    suppression_add,
)
from contacts.services import contact_restrict, contacts_bulk_upsert
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db


def marketing(org, *contacts, channel="email", purpose="marketing", **kw) -> list[Decision]:
    ids = [c if isinstance(c, int) else c.pk for c in contacts]
    found = eligibility_decide(
        organisation=org, contact_ids=ids, kind="marketing", purpose=purpose, channel=channel, **kw
    )
    return [found[i] for i in ids]


def transactional(org, *contacts, channel="sms", **kw) -> list[Decision]:
    ids = [c.pk for c in contacts]
    found = eligibility_decide(
        organisation=org, contact_ids=ids, kind="transactional", channel=channel, **kw
    )
    return [found[i] for i in ids]


@pytest.mark.obligation("CON-3", "CON-7")
def test_marketing_needs_consent_for_that_purpose_and_channel(org_a, ana):
    (decision,) = marketing(org_a, ana)
    assert decision == Decision(ana.pk, False, None, None, ["no_consent"])
    entry = record(ana, channel="email")
    (decision,) = marketing(org_a, ana)
    assert decision.allowed and decision.legal_basis == "consent"
    assert decision.consent_entry_id == entry.pk and decision.reasons == []
    assert marketing(org_a, ana, channel="sms")[0].reasons == ["no_consent"]
    assert marketing(org_a, ana, purpose="surveys")[0].reasons == ["no_consent"]
    everywhere = record(ana, channel="all", purpose="surveys")
    (sms,) = marketing(org_a, ana, channel="whatsapp", purpose="surveys")
    assert sms.allowed and sms.consent_entry_id == everywhere.pk


@pytest.mark.obligation("CON-2", "CON-3")
def test_a_withdrawal_refuses_at_once_and_never_blocks_transactional(org_a, ana):
    record(ana, channel="all")
    consent_withdraw(contact=ana, purpose="marketing", channel="sms", source="stop_reply")
    assert marketing(org_a, ana, channel="sms")[0].reasons == ["withdrawn"]
    assert marketing(org_a, ana, channel="email")[0].allowed
    (reminder,) = transactional(org_a, ana, channel="sms")
    assert reminder.allowed and reminder.legal_basis == "contract"
    assert reminder.consent_entry_id is None


@pytest.mark.obligation("CON-5")
def test_lapsed_consent_is_refused_before_and_after_the_daily_job(org_a):
    pia = make_contact(org_a, first_name="Pia", email="pia@example.test")
    given = dt.datetime(2023, 1, 5, 10, tzinfo=dt.UTC)
    with time_machine.travel(given, tick=False):
        record(pia)
    due = dt.datetime(2025, 1, 5, 10, tzinfo=dt.UTC)
    assert marketing(org_a, pia, now=due - dt.timedelta(minutes=1))[0].allowed
    assert marketing(org_a, pia, now=due)[0].reasons == ["lapsed"]
    from consent.services import consent_lapse_run

    consent_lapse_run(now=due)
    assert marketing(org_a, pia, now=due + dt.timedelta(days=1))[0].reasons == ["lapsed"]


@pytest.mark.obligation("CON-6", "DSR-11")
def test_a_direct_marketing_objection_refuses_marketing_but_not_transactional(org_a, ana):
    record(ana, channel="all")
    objection_record(contact=ana, kind="direct_marketing", source="form")
    (decision,) = marketing(org_a, ana)
    assert decision.reasons == ["objection", "suppressed", "withdrawn"]
    # Another purpose the person still consents to is marketing too: the objection covers it.
    record(ana, channel="all", purpose="surveys")
    assert marketing(org_a, ana, purpose="surveys")[0].reasons == ["objection", "suppressed"]
    assert transactional(org_a, ana)[0].allowed


@pytest.mark.obligation("CON-6", "DSR-9")
def test_suppression_blocks_a_re_created_and_a_re_imported_contact(org_a, ana):
    objection_record(contact=ana, kind="direct_marketing", source="form")
    registry.erase(Subject("contact", org_a.pk, ana.pk), dry_run=False)
    (erased,) = marketing(org_a, ana.pk)
    assert erased.reasons == ["erased"]
    again = make_contact(org_a, first_name="Ana", email="Ana@Example.test ")
    record(again, channel="all")
    assert marketing(org_a, again)[0].reasons == ["suppressed"]
    (imported,) = contacts_bulk_upsert(
        organisation=org_a, rows=[{"first_name": "A", "phone": "041 123 456"}], source_kind="import"
    )
    record(imported.contact, channel="sms")
    assert marketing(org_a, imported.id, channel="sms")[0].reasons == ["suppressed"]
    # Another organisation's list does not reach here, nor the other way round.
    other = make_contact(org_a, first_name="Olga", email="olga@example.test")
    record(other)
    assert marketing(org_a, other)[0].allowed


@pytest.mark.obligation("CON-6")
def test_a_suppression_added_by_hand_matches_by_external_id(org_a):
    keyed = make_contact(org_a, first_name="Kim", email="kim@example.test", external_id=" X-9 ")
    record(keyed)
    suppression_add(organisation=org_a, external_id="X-9")
    assert marketing(org_a, keyed)[0].reasons == ["suppressed"]


@pytest.mark.obligation("CON-4", "DSR-11")
def test_transactional_needs_a_live_relationship_and_stops_on_objection_until_grounds(
    org_a, ana, dpo_a
):
    prospect = make_contact(org_a, first_name="Pia", phone="+38640111222")
    ended = make_contact(
        org_a,
        first_name="Eda",
        phone="+38640111333",
        relationship_status="active",
        relationship_ended_at=timezone.localdate().isoformat(),
    )
    assert transactional(org_a, prospect)[0].reasons == ["no_relationship"]
    assert transactional(org_a, ended)[0].reasons == ["no_relationship"]
    objection = objection_record(contact=ana, kind="legitimate_interest", source="form")
    assert transactional(org_a, ana)[0].reasons == ["objection"]
    assert marketing(org_a, ana)[0].reasons == ["no_consent"]  # not an objection to marketing
    objection_grounds_record(objection=objection, reason="Ongoing treatment", recorded_by=dpo_a)
    (decision,) = transactional(org_a, ana)
    assert decision.allowed and decision.legal_basis == "legitimate_interest"


@pytest.mark.obligation("CON-4", "MSG-5")
def test_the_channel_needs_its_address_and_whatsapp_uses_the_phone(org_a):
    email_only = make_contact(
        org_a, first_name="Ela", email="ela@example.test", relationship_status="active"
    )
    record(email_only, channel="all")
    assert transactional(org_a, email_only, channel="whatsapp")[0].reasons == ["no_address"]
    assert marketing(org_a, email_only, channel="sms")[0].reasons == ["no_address"]
    assert transactional(org_a, email_only, channel="email")[0].allowed
    phone_only = make_contact(org_a, first_name="Fin", phone="+38641999888")
    record(phone_only, channel="whatsapp")
    assert marketing(org_a, phone_only, channel="whatsapp")[0].allowed


@pytest.mark.obligation("CNT-4", "TEN-3", "MSG-5")
def test_restricted_contacts_and_suspended_organisations_are_refused(org_a, ana):
    record(ana, channel="all")
    contact_restrict(contact=ana, reason="DSR 4")
    assert marketing(org_a, ana)[0].reasons == ["restricted"]
    assert transactional(org_a, ana)[0].reasons == ["restricted"]
    # The caller's organisation object predates the suspension: the decision reads it afresh.
    stale = type(org_a).objects.get(pk=org_a.pk)
    organisation_suspend(organisation=org_a, reason="unpaid")
    assert transactional(stale, ana)[0].reasons == ["organisation_suspended", "restricted"]


@pytest.mark.obligation("CNT-6", "CON-3")
def test_a_minors_consent_counts_only_with_a_guardians_consent(org_a):
    today = timezone.localdate()
    mother = make_contact(org_a, first_name="Mojca", birth_date="1980-01-01")
    teen = make_contact(
        org_a,
        first_name="Tina",
        birth_date=today.replace(year=today.year - 15, day=1).isoformat(),
        guardian=mother.pk,
    )
    own = record(teen, channel="all")
    (decision,) = marketing(org_a, teen)
    assert decision.reasons == ["minor_without_guardian_consent"]
    assert transactional(org_a, teen, channel="email")[0].reasons == ["no_relationship"]
    guardian = record(teen, channel="all", source="guardian")
    (decision,) = marketing(org_a, teen)
    assert decision.allowed and decision.consent_entry_id == guardian.pk
    assert decision.guardian_consent_entry_id == guardian.pk
    # The minor renews on their own later: still counts, the guardian's consent stands.
    renewed = record(teen, channel="email")
    (decision,) = marketing(org_a, teen)
    assert decision.allowed and decision.consent_entry_id == renewed.pk != own.pk
    # The guardian withdraws: the minor's own "given" afterwards does not count.
    consent_withdraw(contact=teen, purpose="marketing", channel="all", source="guardian")
    record(teen, channel="email")
    assert marketing(org_a, teen)[0].reasons == ["minor_without_guardian_consent"]


def test_wrong_questions_are_errors_not_refusals(org_a, ana):
    for kwargs in (
        {"kind": "newsletter", "channel": "email", "purpose": "marketing"},
        {"kind": "marketing", "channel": "all", "purpose": "marketing"},
        {"kind": "marketing", "channel": "fax", "purpose": "marketing"},
        {"kind": "marketing", "channel": "email", "purpose": None},
        {"kind": "marketing", "channel": "email", "purpose": "nope"},
    ):
        with pytest.raises(EligibilityQueryError):
            eligibility_decide(organisation=org_a, contact_ids=[ana.pk], **kwargs)


@pytest.mark.obligation("TEN-1")
def test_another_organisations_contact_reads_as_erased(org_a, org_b, bor):
    record(bor)
    assert marketing(org_a, bor)[0].reasons == ["erased"]
    assert transactional(org_a, bor)[0].reasons == ["erased"]


def _population(org, size: int) -> list[int]:
    rows = [
        {
            "first_name": f"P{i}",
            "email": f"p{i}@example.test",
            "phone": f"+3864{1000000 + i}",
            "relationship_status": "active" if i % 2 else "none",
            "birth_date": "2010-06-01" if i % 7 == 0 else None,
        }
        for i in range(size)
    ]
    ids = [r.id for r in contacts_bulk_upsert(organisation=org, rows=rows, source_kind="import")]
    purpose = Purpose.objects.get(organisation=org, slug="marketing")
    now = timezone.now()
    ConsentEntry.objects.bulk_create(
        [
            ConsentEntry(
                organisation=org,
                contact_id=pk,
                purpose=purpose,
                channel=channel,
                status=status,
                source=source,
                recorded_at=now - dt.timedelta(days=days),
            )
            for n, pk in enumerate(ids)
            for channel, status, source, days in (
                ("all", "given", "form", 30),
                ("sms", "withdrawn" if n % 3 == 0 else "given", "staff", 10),
                ("email", "given", "guardian" if n % 7 == 0 else "api", 5),
            )
        ]
    )
    objection_record(contact=_contact(org, ids[1]), kind="direct_marketing", source="form")
    objection_record(contact=_contact(org, ids[3]), kind="legitimate_interest", source="form")
    return ids


def _contact(org, pk):
    from contacts.models import Contact

    return Contact.objects.get_for_organisation(org, pk=pk)


@pytest.mark.obligation("MSG-5")
@pytest.mark.parametrize("kind", ["marketing", "transactional"])
def test_the_query_count_does_not_grow_with_the_batch(org_a, kind, django_assert_num_queries):
    ids = _population(org_a, 500)
    expected = 6 if kind == "marketing" else 3
    for batch in (ids[:10], ids):
        with django_assert_num_queries(expected):
            decisions = eligibility_decide(
                organisation=org_a,
                contact_ids=[*batch, 10**9],
                kind=kind,
                purpose="marketing",
                channel="sms",
            )
        assert len(decisions) == len(batch) + 1 and decisions[10**9].reasons == ["erased"]
    reasons = {n: decisions[pk].reasons for n, pk in enumerate(ids)}
    if kind == "marketing":
        assert reasons[0] == ["withdrawn"]  # the SMS entry withdrew (n % 3 == 0)
        assert reasons[1] == ["objection", "suppressed", "withdrawn"]
        assert reasons[2] == []  # the later SMS entry gives
        assert reasons[7] == ["minor_without_guardian_consent"]  # guardian gave e-mail only
        assert decisions[ids[2]].consent_entry_id is not None
    else:
        assert reasons[0] == ["no_relationship"] and reasons[1] == []
        assert reasons[3] == ["objection"]
