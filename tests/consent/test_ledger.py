"""The ledger (CON-1): append-only entries, latest wins, "all" expands, seeded purposes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from carely.audit.context import Actor, acting_as
from carely.audit.models import AuditEvent
from carely.orgs.services import organisation_create
from consent.models import ConsentEntry, ConsentLedgerAppendOnly, Purpose, Wording, WordingInUse
from consent.seeding import DEFAULT_PURPOSES
from consent.selectors import consent_ledger, consent_states
from consent.services import ConsentInvalid, consent_withdraw, wording_publish
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db


def test_every_new_organisation_gets_the_default_purposes_and_a_first_wording():
    organisation = organisation_create(name="Clinic New")
    slugs = set(Purpose.objects.for_organisation(organisation).values_list("slug", flat=True))
    assert (
        slugs == {"marketing", "reminders", "surveys", "review-requests"} == set(DEFAULT_PURPOSES)
    )
    wordings = Wording.objects.for_organisation(organisation)
    assert {(w.purpose.slug, w.language) for w in wordings} == {
        (s, lang) for s in DEFAULT_PURPOSES for lang in ("sl", "en")
    }
    assert all(w.version == "1" for w in wordings)


@pytest.mark.obligation("CON-1")
def test_an_entry_keeps_everything_the_rule_asks_for(org_a, ana, staff_a):
    with acting_as(Actor.user(staff_a.pk)):
        entry = record(
            ana,
            channel="sms",
            source="form",
            ip_address=" 2001:db8::1 ",
            user_agent="Mozilla/5.0",
            note="signed at the desk",
        )
    entry = ConsentEntry.objects.get(pk=entry.pk)
    assert (entry.purpose.slug, entry.channel, entry.status, entry.source) == (
        "marketing",
        "sms",
        "given",
        "form",
    )
    assert entry.wording.version == "1" and entry.wording.language == "sl"
    assert entry.recorded_by == staff_a and entry.api_key is None
    assert entry.ip_address == "2001:db8::1" and entry.user_agent == "Mozilla/5.0"
    # Personal data is encrypted at rest.
    with connection.cursor() as cursor:
        cursor.execute("SELECT ip_address FROM consent_consententry WHERE id = %s", [entry.pk])
        assert "2001" not in cursor.fetchone()[0]
    event = AuditEvent.objects.filter(action="consent.given").get()
    assert event.details["entry_id"] == entry.pk and event.object_id == str(ana.pk)


@pytest.mark.obligation("CON-1")
def test_wording_follows_the_contacts_language(org_a):
    english = make_contact(org_a, first_name="Eve", preferred_language="en")
    assert record(english).wording.language == "en"


@pytest.mark.obligation("CON-1")
def test_giving_needs_a_known_wording_and_each_bad_field_is_named(org_a, ana):
    with pytest.raises(ConsentInvalid) as caught:
        record(ana, purpose="newsletter", channel="fax", source="carrier pigeon")
    assert set(caught.value.errors) == {"purpose", "channel", "source"}
    assert "marketing" in caught.value.errors["purpose"][0]
    with pytest.raises(ConsentInvalid) as caught:
        record(ana, wording_version=None)
    assert set(caught.value.errors) == {"wording_version"}
    with pytest.raises(ConsentInvalid) as caught:
        record(ana, wording_version="7")
    assert "“1”" in caught.value.errors["wording_version"][0]
    with pytest.raises(ConsentInvalid) as caught:
        record(ana, ip_address="not-an-ip")
    assert set(caught.value.errors) == {"ip_address"}
    assert not ConsentEntry.objects.exists()


@pytest.mark.obligation("CON-1")
def test_the_latest_entry_wins(org_a, ana):
    record(ana, channel="email", recorded_at=timezone.now() - dt.timedelta(days=3))
    withdrawal = consent_withdraw(
        contact=ana,
        purpose="marketing",
        channel="email",
        source="unsubscribe_link",
        recorded_at=timezone.now() - dt.timedelta(days=2),
    )
    state = consent_states(organisation=org_a, contact_ids=[ana.pk])[ana.pk]
    assert state[("marketing", "email")].current.id == withdrawal.pk
    assert state[("marketing", "email")].status == "withdrawn"
    # An import of an older "given" does not undo a later withdrawal: latest by time, not by id.
    record(ana, channel="email", source="import", recorded_at=timezone.now() - dt.timedelta(5))
    state = consent_states(organisation=org_a, contact_ids=[ana.pk])[ana.pk]
    assert state[("marketing", "email")].current.id == withdrawal.pk
    renewed = record(ana, channel="email")
    state = consent_states(organisation=org_a, contact_ids=[ana.pk])[ana.pk]
    assert state[("marketing", "email")].current.id == renewed.pk


@pytest.mark.obligation("CON-1")
def test_all_expands_to_each_channel_and_later_entries_override_per_channel(org_a, ana):
    everything = record(ana, channel="all")
    sms_off = consent_withdraw(contact=ana, purpose="marketing", channel="sms", source="stop_reply")
    state = consent_states(organisation=org_a, contact_ids=[ana.pk])[ana.pk]
    assert {ch: s.status for (p, ch), s in state.items()} == {
        "sms": "withdrawn",
        "email": "given",
        "whatsapp": "given",
    }
    assert state[("marketing", "email")].current.id == everything.pk
    assert state[("marketing", "sms")].current.id == sms_off.pk
    all_off = consent_withdraw(contact=ana, purpose="marketing", channel="all", source="staff")
    state = consent_states(organisation=org_a, contact_ids=[ana.pk])[ana.pk]
    assert {s.current.id for s in state.values()} == {all_off.pk}
    email_on = record(ana, channel="email", purpose="marketing")
    state = consent_states(organisation=org_a, contact_ids=[ana.pk], channels=["email"])[ana.pk]
    assert list(state) == [("marketing", "email")]
    assert state[("marketing", "email")].current.id == email_on.pk


@pytest.mark.obligation("CON-1", "TEN-1")
def test_states_and_ledger_stay_in_their_organisation(org_a, org_b, ana, bor):
    record(ana)
    record(bor)
    assert consent_states(organisation=org_b, contact_ids=[ana.pk, bor.pk]).keys() == {bor.pk}
    assert not consent_ledger(organisation=org_b, contact_id=ana.pk).exists()
    with pytest.raises(ConsentInvalid):
        record(ana, purpose=Purpose.objects.get(organisation=org_b, slug="marketing"))


@pytest.mark.obligation("CON-1")
def test_entries_cannot_be_changed_or_deleted_through_the_model(org_a, ana):
    entry = record(ana)
    entry.status = "withdrawn"
    with pytest.raises(ConsentLedgerAppendOnly):
        entry.save()
    with pytest.raises(ConsentLedgerAppendOnly):
        entry.delete()
    with pytest.raises(ConsentLedgerAppendOnly):
        ConsentEntry.objects.filter(pk=entry.pk).update(status="withdrawn")
    with pytest.raises(ConsentLedgerAppendOnly):
        ConsentEntry.objects.filter(pk=entry.pk).delete()
    assert ConsentEntry.objects.get(pk=entry.pk).status == "given"


@pytest.mark.obligation("CON-1")
def test_the_database_refuses_to_change_an_entry(org_a, ana, staff_a):
    with acting_as(Actor.user(staff_a.pk)):
        entry = record(ana)
    base = ConsentEntry._base_manager.filter(pk=entry.pk)
    for change in ({"status": "withdrawn"}, {"channel": "sms"}, {"recorded_at": timezone.now()}):
        with pytest.raises(DatabaseError), transaction.atomic():
            base.update(**change)
    with pytest.raises(DatabaseError), transaction.atomic():
        base.update(recorded_by=None, status="withdrawn")
    # What other rules need stays possible: a deleted account's id becomes NULL; key rotation
    # rewrites ciphertexts.
    base.update(recorded_by=None)
    base.update(note="re-encrypted")
    assert ConsentEntry.objects.get(pk=entry.pk).status == "given"


@pytest.mark.obligation("CON-1")
def test_a_used_wording_never_changes(org_a, ana):
    entry = record(ana)
    wording = entry.wording
    wording.text = "Something else"
    with pytest.raises(WordingInUse):
        wording.save()
    unused = wording_publish(
        organisation=org_a, purpose="marketing", version="2", language="sl", text="Nova različica."
    )
    unused.text = "Popravek pred uporabo."
    unused.save()  # not shown to anyone yet
    with pytest.raises(ConsentInvalid) as caught:
        wording_publish(
            organisation=org_a, purpose="marketing", version="2", language="sl", text="x"
        )
    assert "already published" in caught.value.errors["version"][0]
    assert record(ana, wording_version="2").wording == unused
