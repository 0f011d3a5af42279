"""Contact files in the registry's duties (CNT-5, DSR-9): access reports and exports list them,
the staff user's erasure keeps only the uploader id, and the contact page shows the panel."""

from __future__ import annotations

import io
import json

import pytest

from carely.privacy.registry import Subject, registry
from files.services import contact_file_add
from tests.conftest import login
from tests.files.conftest import PDF, upload

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("CNT-5")]


def _add(contact, by=None):
    return contact_file_add(
        contact=contact, upload=upload(PDF, "Ana Novak izvid.pdf"), kind="document", uploaded_by=by
    )


@pytest.mark.obligation("DSR-9")
def test_access_report_lists_the_file_as_a_document(contact_a, contact_b, staff_a):
    row = _add(contact_a, by=staff_a)
    _add(contact_b)
    found = registry.collect(Subject("contact", contact_a.organisation_id, contact_a.pk))
    (entry,) = found["files.ContactFile"]
    assert entry["id"] == row.pk and entry["contact_id"] == contact_a.pk
    assert entry["document"] == row.stored_file.name
    assert entry["original_name"] == "Ana Novak izvid.pdf"
    assert entry["content_type"] == "application/pdf" and entry["sha256"] == row.sha256
    assert "uploaded_by_user_id" not in entry  # the staff member's data, not the patient's


@pytest.mark.obligation("DSR-9")
def test_export_of_the_contact_includes_the_file(contact_a):
    row = _add(contact_a)
    stream = io.StringIO()
    registry.export(Subject("contact", contact_a.organisation_id, contact_a.pk), stream)
    assert row.stored_file.name in stream.getvalue()
    assert "Ana Novak izvid.pdf" in json.dumps(json.loads(stream.getvalue()), ensure_ascii=False)


@pytest.mark.obligation("DSR-9")
def test_erasing_the_uploader_keeps_the_file_and_reports_why(contact_a, staff_a, org_a):
    row = _add(contact_a, by=staff_a)
    report = registry.erase(Subject("staff_user", org_a.pk, staff_a.pk), dry_run=False)
    row.refresh_from_db()
    assert row.uploaded_by_id == staff_a.pk
    assert "files.ContactFile.uploaded_by" in report.kept_for


def test_the_contact_page_shows_the_files_panel(client, staff_a, contact_a):
    row = _add(contact_a)
    login(client, staff_a)
    response = client.get(f"/contacts/{contact_a.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Ana Novak izvid.pdf" in page
    assert f"/files/contacts/{contact_a.pk}/{row.pk}/download" in page
    assert f"/files/contacts/{contact_a.pk}/upload" in page
