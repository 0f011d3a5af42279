"""Withdrawal (CON-2), objections and suppression (CON-6, DSR-11), guardians (CNT-6),
suspension and restriction, the ``consent_withdrawn`` seam."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carely.audit.models import AuditEvent
from carely.orgs.services import organisation_suspend
from carely.orgs.suspension import OrganisationSuspended
from carely.privacy.registry import Subject, registry
from consent.models import ConsentEntry, Objection, SuppressionEntry
from consent.selectors import consent_states
from consent.services import (
    ConsentInvalid,
    ContactRestricted,
    GroundsRefused,
    consent_withdraw,
    objection_grounds_record,
    objection_record,
    suppression_add,
)
from consent.signals import consent_withdrawn
from contacts.models import Contact
from contacts.services import contact_restrict
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def withdrawals():
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    consent_withdrawn.connect(receiver, dispatch_uid="test-withdrawals")
    yield received
    consent_withdrawn.disconnect(dispatch_uid="test-withdrawals")


@pytest.mark.obligation("CON-2")
def test_a_withdrawal_is_announced_after_commit_with_the_channels_it_covers(
    org_a, ana, withdrawals, django_capture_on_commit_callbacks
):
    record(ana)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        entry = consent_withdraw(
            contact=ana, purpose="marketing", channel="all", source="unsubscribe_link"
        )
    assert withdrawals == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert withdrawals == [
        {
            "signal": consent_withdrawn,
            "organisation_id": org_a.pk,
            "contact_id": ana.pk,
            "entry_id": entry.pk,
            "purpose": "marketing",
            "channels": ("sms", "email", "whatsapp"),
            "cause": "",
        }
    ]


@pytest.mark.obligation("CON-2")
def test_a_failing_receiver_does_not_undo_or_break_the_withdrawal(
    org_a, ana, django_capture_on_commit_callbacks
):
    def broken(sender, **kwargs):
        raise RuntimeError("outbox down")

    consent_withdrawn.connect(broken, dispatch_uid="test-broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            consent_withdraw(contact=ana, purpose="marketing", channel="sms", source="stop_reply")
    finally:
        consent_withdrawn.disconnect(dispatch_uid="test-broken")
    assert ConsentEntry.objects.filter(status="withdrawn").count() == 1


@pytest.mark.obligation("TEN-3", "CON-2", "CNT-4")
def test_suspension_and_restriction_refuse_giving_but_never_withdrawing(org_a, ana):
    organisation_suspend(organisation=org_a, reason="unpaid invoices")
    ana.refresh_from_db()
    with pytest.raises(OrganisationSuspended):
        record(ana)
    consent_withdraw(contact=ana, purpose="marketing", channel="all", source="unsubscribe_link")
    objection_record(contact=ana, kind="legitimate_interest", source="form")
    suppression_add(organisation=ana.organisation, email="else@example.test")
    restricted = make_contact(ana.organisation.__class__.objects.create(name="C", slug="c"))
    contact_restrict(contact=restricted, reason="DSR 12")
    with pytest.raises(ContactRestricted):
        record(restricted)
    consent_withdraw(contact=restricted, purpose="marketing", channel="sms", source="staff")
    assert ConsentEntry.objects.filter(status="given").count() == 0


@pytest.mark.obligation("CON-6", "DSR-11")
def test_a_direct_marketing_objection_suppresses_and_withdraws(org_a, ana, withdrawals):
    record(ana)
    objection = objection_record(contact=ana, kind="direct_marketing", source="form", note="no")
    digests = set(SuppressionEntry.objects.for_organisation(org_a).values_list("kind", "digest"))
    assert digests == {
        ("email", ana.email_bidx),
        ("phone", ana.phone_bidx),
        ("external_id", ana.external_id_bidx),
    }
    state = consent_states(organisation=org_a, contact_ids=[ana.pk])[ana.pk]
    assert {s.status for s in state.values()} == {"withdrawn"}
    withdrawal = ConsentEntry.objects.get(status="withdrawn")
    assert (withdrawal.cause, withdrawal.channel, withdrawal.source) == ("objection", "all", "form")
    event = AuditEvent.objects.get(action="consent.objection_recorded")
    assert event.details["objection_id"] == objection.pk
    assert event.details["suppression_added"] == 3
    # A second objection adds no duplicate suppression.
    objection_record(contact=ana, kind="direct_marketing", source="staff")
    assert SuppressionEntry.objects.count() == 3
    with pytest.raises(GroundsRefused):
        objection_grounds_record(objection=objection, reason="x", recorded_by=None)


@pytest.mark.obligation("CON-6", "DSR-9")
def test_suppression_survives_erasure_and_matches_the_same_address_again(org_a, ana):
    objection_record(contact=ana, kind="direct_marketing", source="form")
    old_digests = {ana.email_bidx, ana.phone_bidx}
    report = registry.erase(Subject("contact", org_a.pk, ana.pk), dry_run=False)
    assert report.by_model["consent.ConsentEntry"]["deleted"] == 1
    assert report.by_model["consent.Objection"]["deleted"] == 1
    assert not Contact.objects.filter(pk=ana.pk).exists()
    assert not ConsentEntry._base_manager.exists() and not Objection.objects.exists()
    assert SuppressionEntry.objects.count() == 3
    again = make_contact(org_a, first_name="Ana", email=" ANA@example.test", phone="041 123 456")
    assert {again.email_bidx, again.phone_bidx} == old_digests
    assert SuppressionEntry.objects.filter(digest__in=old_digests).count() == 2


@pytest.mark.obligation("CON-6")
def test_suppression_add_normalises_like_the_blind_indexes(org_a, ana):
    assert (
        suppression_add(organisation=org_a, email="  Ana@Example.TEST ", phone="041 123 456") == 2
    )
    assert suppression_add(organisation=org_a, email="ana@example.test") == 0
    stored = set(SuppressionEntry.objects.values_list("digest", flat=True))
    assert stored == {ana.email_bidx, ana.phone_bidx}
    with pytest.raises(ConsentInvalid) as caught:
        suppression_add(organisation=org_a, email="nobody", phone="12")
    assert set(caught.value.errors) == {"email", "phone"}
    with pytest.raises(ConsentInvalid):
        suppression_add(organisation=org_a)


@pytest.mark.obligation("DSR-11")
def test_only_the_dpo_records_grounds_once_with_a_reason(org_a, ana, staff_a, dpo_a):
    objection = objection_record(contact=ana, kind="legitimate_interest", source="staff")
    with pytest.raises(GroundsRefused, match="data protection officer"):
        objection_grounds_record(objection=objection, reason="care continuity", recorded_by=staff_a)
    with pytest.raises(GroundsRefused, match="Write the compelling"):
        objection_grounds_record(objection=objection, reason="  ", recorded_by=dpo_a)
    objection_grounds_record(
        objection=objection, reason="Ongoing treatment needs reminders", recorded_by=dpo_a
    )
    objection.refresh_from_db()
    assert objection.grounds_recorded_by == dpo_a and objection.has_grounds
    assert objection.grounds_recorded_at <= timezone.now()
    with pytest.raises(GroundsRefused, match="already recorded"):
        objection_grounds_record(objection=objection, reason="again", recorded_by=dpo_a)
    assert AuditEvent.objects.filter(action="consent.objection_grounds_recorded").count() == 1


@pytest.mark.obligation("CNT-6")
def test_guardian_consent_needs_a_guardian_who_is_an_adult_of_the_same_organisation(
    org_a, org_b, bor
):
    mother = make_contact(org_a, first_name="Mojca", birth_date="1980-01-01")
    teen = make_contact(org_a, first_name="Tina", birth_date=_years_ago(15))
    assert teen.is_minor
    with pytest.raises(ConsentInvalid) as caught:
        record(teen, source="guardian")
    assert "guardian" in caught.value.errors["source"][0]
    with pytest.raises(ConsentInvalid):
        record(teen, source="guardian", guardian=bor)
    entry = record(teen, source="guardian", guardian=mother)
    assert entry.guardian == mother and entry.source == "guardian"


def _years_ago(years: int) -> str:
    today = timezone.localdate()
    return today.replace(year=today.year - years, day=min(today.day, 28)).isoformat()


@pytest.mark.obligation("CNT-6", "DSR-9")
def test_erasing_the_guardian_keeps_the_minors_entry_without_the_guardian(org_a):
    mother = make_contact(org_a, first_name="Mojca", birth_date="1980-01-01")
    teen = make_contact(org_a, first_name="Tina", birth_date=_years_ago(15), guardian=mother.pk)
    entry = record(teen, source="guardian")
    assert entry.guardian == mother
    registry.erase(Subject("contact", org_a.pk, mother.pk), dry_run=False)
    kept = ConsentEntry.objects.get(pk=entry.pk)
    assert kept.guardian_id is None and kept.source == "guardian"
