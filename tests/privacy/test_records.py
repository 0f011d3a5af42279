"""SEC-6: records of processing per organisation and for the platform, from the registry."""

from __future__ import annotations

import csv
import io
import json

import pytest

from carely.audit.models import AuditEvent
from carely.privacy.models import ProcessingPurpose
from carely.privacy.records import records_of_processing
from carely.privacy.registry import registry
from tests.conftest import login

pytestmark = pytest.mark.obligation("SEC-6")


def _activity(activities, slug):
    return next(a for a in activities if a.slug == slug)


def test_a_clinic_record_lists_each_purpose_from_the_registry(org_a):
    activities = records_of_processing(organisation=org_a)
    accountability = _activity(activities, "accountability")
    # The access log and audit events declare "accountability" in carely/audit/privacy.py.
    assert "audit.AccessLogEntry" in accountability.models
    assert accountability.legal_basis.startswith("Legal obligation")
    assert "technical_log" in accountability.categories
    assert {"contact", "staff_user"} <= accountability.subjects
    assert "visitor_and_log_data" in accountability.retention
    assert accountability.transfers == "none outside the EEA"
    assert next(s.slug for s in accountability.recipients) == "aws"
    assert "12 months" in accountability.as_row()["retention"]


def test_every_declared_purpose_appears_and_one_without_a_basis_is_flagged(org_a):
    declared = {p for entry in registry.entries() for p in entry.purposes}
    slugs = {a.slug for a in records_of_processing(organisation=org_a)}
    platform_slugs = {a.slug for a in records_of_processing(organisation=None)}
    assert declared <= slugs | platform_slugs
    # The test-only probe declares "billing", which no clinic has a row for.
    flagged = _activity(records_of_processing(organisation=org_a), "billing")
    assert flagged.purpose is None
    assert flagged.legal_basis.startswith("not recorded yet")
    assert "tests_privacy_probe" not in flagged.as_row()["legal_basis"]


def test_the_platform_record_covers_staff_accounts(db):
    activities = records_of_processing(organisation=None)
    accounts = _activity(activities, "platform_accounts")
    assert "orgs.User" in accounts.models
    assert accounts.legal_basis.startswith("Contract")
    assert "staff_user" in accounts.subjects


def test_records_of_two_clinics_are_separate(org_a, org_b, dpo_a, client):
    login(client, dpo_a)
    ProcessingPurpose.objects.filter(organisation=org_b, slug="marketing").delete()
    records_of_processing(organisation=org_b)
    purpose_b = ProcessingPurpose.objects.get(organisation=org_b, slug="marketing")
    response = client.post(
        f"/privacy/records/purposes/{purpose_b.pk}/",
        {"name": "x", "legal_basis": "consent", "description": "", "legal_basis_note": ""},
    )
    assert response.status_code == 404
    purpose_b.refresh_from_db()
    assert purpose_b.name != "x"


@pytest.mark.parametrize(
    ("persona", "status"),
    [("staff_a", 403), ("admin_a", 403), ("dpo_a", 200)],
)
def test_who_may_read_the_record(client, request, persona, status):
    login(client, request.getfixturevalue(persona))
    assert client.get("/privacy/records/").status_code == status


def test_dpo_edits_a_legal_basis_and_the_change_is_audited(client, org_a, dpo_a):
    login(client, dpo_a)
    page = client.get("/privacy/records/").content.decode()
    assert "Marketing messages" in page and "Consent (GDPR Art. 6(1)(a))" in page
    purpose = ProcessingPurpose.objects.get(organisation=org_a, slug="surveys")
    response = client.post(
        f"/privacy/records/purposes/{purpose.pk}/",
        {
            "name": "Patient surveys",
            "description": "After each visit.",
            "legal_basis": "legitimate_interests",
            "legal_basis_note": "Balancing test of 2026-11-01",
        },
    )
    assert response.status_code == 302
    purpose.refresh_from_db()
    assert (purpose.legal_basis, purpose.updated_by_id) == ("legitimate_interests", dpo_a.pk)
    event = AuditEvent.objects.get(action="processing_purpose.updated")
    assert event.details["previous_legal_basis"] == "consent"
    assert event.organisation_id == org_a.pk


def test_a_bad_legal_basis_is_refused_with_the_field_named(client, org_a, dpo_a):
    login(client, dpo_a)
    records_of_processing(organisation=org_a)
    purpose = ProcessingPurpose.objects.get(organisation=org_a, slug="surveys")
    response = client.post(
        f"/privacy/records/purposes/{purpose.pk}/",
        {"name": "Patient surveys", "legal_basis": "because", "description": ""},
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    purpose.refresh_from_db()
    assert purpose.legal_basis == "consent"


def test_exports_as_csv_and_json(client, org_a, dpo_a):
    login(client, dpo_a)
    response = client.get("/privacy/records/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {"marketing", "accountability"} <= {row["purpose"] for row in rows}
    assert all(row["transfers"] == "none outside the EEA" for row in rows)
    document = json.loads(client.get("/privacy/records/?format=json").content)
    assert document["controller"] == org_a.name
    assert any(a["purpose"] == "security" for a in document["activities"])


def test_platform_record_is_for_the_platform_dpo_only(client, platform_dpo, dpo_a):
    login(client, platform_dpo)
    assert client.get("/privacy/records/").status_code == 302  # no clinic: the platform record
    body = client.get("/privacy/records/platform/").content.decode()
    assert "Staff accounts" in body and "Marketing messages" not in body
    client.logout()
    login(client, dpo_a)
    assert client.get("/privacy/records/platform/").status_code == 403
