"""registry.erase: every action, one transaction, a report without personal data (DSR-9)."""

import datetime as dt
import json

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from carely.lib.keyed_hash import keyed_hash
from carely.orgs.scoping import MissingOrganisation
from carely.privacy.erasure import ErasureConflict
from carely.privacy.registry import Subject, registry
from tests.privacy_probe.models import ProbeInvoice, ProbeNote, ProbePatient

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(org_a, org_b, make_patient):
    ana = make_patient(org_a, birth_date=dt.date(1984, 2, 29), notes="asthma")
    other = make_patient(org_a, first_name="Bor", email="bor@example.si", phone="+38640111222")
    twin_b = make_patient(org_b)  # same person's data at another clinic: a different subject
    for patient in (ana, ana, other, twin_b):
        ProbeNote.objects.create(
            organisation=patient.organisation, patient=patient, body="called back"
        )
    invoice = ProbeInvoice.objects.create(
        organisation=org_a,
        patient_ref=ana.pk,
        number="2025-001",
        amount_cents=4500,
        payer_email="Ana.Novak@example.si",
        remark="paid in cash by Ana",
    )
    return {"ana": ana, "other": other, "twin_b": twin_b, "invoice": invoice}


def _counts():
    return (ProbePatient.objects.count(), ProbeNote.objects.count(), ProbeInvoice.objects.count())


def _snapshot():
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM privacy_probe_probeinvoice ORDER BY id")
        return cursor.fetchall()


@pytest.mark.obligation("DSR-9")
def test_a_dry_run_changes_nothing_and_reports_what_would_happen(records, org_a):
    before, invoices = _counts(), _snapshot()
    report = registry.erase(Subject("contact", org_a.pk, records["ana"].pk), dry_run=True)
    assert _counts() == before and _snapshot() == invoices
    assert report.dry_run is True
    assert report.by_model["privacy_probe.ProbePatient"] == {"deleted": 1}
    assert report.by_model["privacy_probe.ProbeNote"] == {"deleted": 2}
    assert report.by_model["privacy_probe.ProbeInvoice"] == {
        "nulled": 1,
        "hashed": 1,
        "kept_restricted": 1,
    }


@pytest.mark.obligation("DSR-9")
def test_erasure_deletes_nulls_hashes_and_restricts(records, org_a):
    ana = records["ana"]
    report = registry.erase(Subject("contact", org_a.pk, ana.pk), dry_run=False)

    assert not ProbePatient.objects.filter(pk=ana.pk).exists()
    assert not ProbeNote.objects.filter(patient_id=ana.pk).exists()
    invoice = ProbeInvoice.objects.get(pk=records["invoice"].pk)
    assert invoice.remark == ""  # null (emptied text)
    # keyed hash of the normalised address: comparable with a suppression entry (CON-6)
    assert invoice.payer_email == "kh1:" + keyed_hash("ana.novak@example.si", purpose="email")
    assert (invoice.patient_ref, invoice.amount_cents) == (ana.pk, 4500)  # kept ...
    assert invoice.restricted_at is not None  # ... and restricted
    # other subjects, of this clinic and of the other one, are untouched
    assert (
        ProbePatient.objects.filter(pk__in=[records["other"].pk, records["twin_b"].pk]).count() == 2
    )
    assert ProbeNote.objects.count() == 2

    assert report.by_category["contact"] == {"deleted": 1 * 4, "hashed": 1}
    assert report.by_category["billing"] == {"nulled": 1, "kept_restricted": 2}
    assert report.kept_for["privacy_probe.ProbeInvoice.patient_ref"].startswith("invoices are kept")
    text = json.dumps(report.as_dict()).lower()
    for personal in ["ana", "novak", "example.si", "41123456", "asthma", "cash"]:
        assert personal not in text, personal
    assert "subject_id" not in text and set(report.as_dict()) == {
        "subject_kind",
        "dry_run",
        "by_model",
        "by_category",
        "kept_for",
        "files_removed",
    }

    # erasing again finds nothing left to delete and hashes nothing twice
    second = registry.erase(Subject("contact", org_a.pk, ana.pk), dry_run=False)
    assert "privacy_probe.ProbePatient" not in second.by_model
    assert ProbeInvoice.objects.get().payer_email == invoice.payer_email


def test_erasure_removes_stored_files_after_commit(
    org_a, make_patient, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    patient = make_patient(org_a)
    patient.photo.save("ana.png", ContentFile(b"\x89PNG"), save=True)
    path = tmp_path / patient.photo.name
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        dry = registry.erase(Subject("contact", org_a.pk, patient.pk), dry_run=True)
    assert path.exists() and dry.files_removed == 1
    with django_capture_on_commit_callbacks(execute=True):
        registry.erase(Subject("contact", org_a.pk, patient.pk), dry_run=False)
    assert not path.exists()


def test_a_contact_subject_needs_its_organisation(records):
    with pytest.raises(MissingOrganisation):
        registry.erase(Subject("contact", None, records["ana"].pk), dry_run=True)


def test_a_cascade_the_registry_does_not_expect_stops_everything(records, org_a, monkeypatch):
    """If ProbeNote were declared keep_restricted, deleting the patient would cascade into it."""
    from carely.privacy import registry as registry_module
    from carely.privacy.registry import Category, Erase, Personal, Reach, Registry

    local = Registry()
    local.subject_kind("contact")
    for entry in registry.entries():
        if entry.label == "privacy_probe.ProbePatient":
            local._models[entry.label] = entry
    local.declare(
        "privacy_probe.ProbeNote",
        reach=Reach("contact", "organisation_id", organisation="organisation_id"),
        retention="contact_consent",
        fields={
            "body": Personal(
                Category.MESSAGE_CONTENT, erase=Erase.KEEP_RESTRICTED, legal_reason="test"
            )
        },
        not_personal=["id", "organisation", "patient", "created_at"],
    )
    assert registry_module.registry is registry
    before = _counts()
    with pytest.raises(ErasureConflict, match="ProbeNote"):
        local.erase(Subject("contact", org_a.pk, records["ana"].pk), dry_run=False)
    assert _counts() == before


def test_a_staff_account_is_erased_across_its_stores(org_a, org_b, staff_a):
    from carely.orgs.models import Membership, User
    from carely.orgs.roles import Role

    Membership.objects.create(user=staff_a, organisation=org_b, role=Role.STAFF)
    # scoped to one clinic, the account itself (a platform record) is out of reach
    scoped = registry.erase(Subject("staff_user", org_a.pk, staff_a.pk), dry_run=True)
    assert "orgs.User" not in scoped.by_model
    assert scoped.by_model["orgs.Membership"] == {"deleted": 1}

    report = registry.erase(Subject("staff_user", None, staff_a.pk), dry_run=False)
    assert not User.objects.filter(pk=staff_a.pk).exists()
    assert report.by_model["orgs.User"] == {"deleted": 1}
    assert report.by_model["orgs.Membership"] == {"deleted": 2}
