"""Staff pages for contact files (CNT-5, CNT-3, TEN-1, SEC-2): the persona matrix, the purpose
asked before a download, streaming from local storage, uploads refused with clear messages."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from carely.audit.models import AccessLogEntry
from contacts.services import contact_restrict
from files.models import ContactFile
from files.services import contact_file_add
from tests.conftest import login
from tests.files.conftest import PDF, WINDOWS_EXE, upload

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("CNT-5")]


def _add(contact, content=PDF, name="Ana Novak izvid.pdf"):
    return contact_file_add(
        contact=contact, upload=upload(content, name), kind="document", uploaded_by=None
    )


def _download(contact, row):
    return f"/files/contacts/{contact.pk}/{row.pk}/download"


def _upload_url(contact):
    return f"/files/contacts/{contact.pk}/upload"


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


# --- download -----------------------------------------------------------------------------------


@pytest.mark.obligation("CNT-3")
def test_download_first_asks_why_and_logs_nothing_until_answered(client, staff_a, contact_a):
    row = _add(contact_a)
    login(client, staff_a)
    response = client.get(_download(contact_a, row))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Why do you need this file?" in page and 'name="purpose"' in page
    assert PDF not in response.content
    assert not AccessLogEntry.objects.filter(action="download").exists()


@pytest.mark.obligation("CNT-3")
@pytest.mark.parametrize("purpose", ["", "curiosity", "routine", "api"])
def test_download_without_a_valid_purpose_is_refused(client, staff_a, contact_a, purpose):
    row = _add(contact_a)
    login(client, staff_a)
    response = client.get(_download(contact_a, row), {"purpose": purpose})
    assert response.status_code == 400
    assert PDF not in response.content
    assert not AccessLogEntry.objects.filter(action="download").exists()


@pytest.mark.obligation("CNT-3")
def test_download_with_a_purpose_streams_identical_bytes_and_is_logged(client, staff_a, contact_a):
    row = _add(contact_a, name="Čuk izvid.pdf")
    login(client, staff_a)
    response = client.get(_download(contact_a, row), {"purpose": "patient_request"})
    assert response.status_code == 200
    assert _body(response) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "utf-8''%C4%8Cuk%20izvid.pdf" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    entry = AccessLogEntry.objects.get(action="download")
    assert entry.organisation_id == contact_a.organisation_id
    assert (entry.actor_type, entry.actor_id) == ("user", str(staff_a.pk))
    assert (entry.subject_type, entry.subject_id) == ("contact", str(contact_a.pk))
    assert (entry.purpose, entry.what) == ("patient_request", [f"file:{row.pk}"])


def test_dpo_can_download(client, dpo_a, contact_a):
    row = _add(contact_a)
    login(client, dpo_a)
    response = client.get(_download(contact_a, row), {"purpose": "dsr"})
    assert response.status_code == 200 and _body(response) == PDF


def test_suspended_organisation_still_downloads(client, staff_a, contact_a, org_a):
    row = _add(contact_a)
    org_a.suspended_at = timezone.now()
    org_a.save()
    login(client, staff_a)
    response = client.get(_download(contact_a, row), {"purpose": "care"})
    assert response.status_code == 200 and _body(response) == PDF


@pytest.mark.obligation("TEN-1")
def test_another_organisations_file_is_404(client, staff_b, admin_b, contact_a):
    row = _add(contact_a)
    for user in (staff_b, admin_b):
        login(client, user)
        assert client.get(_download(contact_a, row)).status_code == 404
        assert client.get(_download(contact_a, row), {"purpose": "care"}).status_code == 404
        assert client.get(f"/files/contacts/{contact_a.pk}/").status_code == 404
        posted = client.post(_upload_url(contact_a), {"kind": "document", "file": upload(PDF)})
        assert posted.status_code == 404
        assert client.post(f"/files/contacts/{contact_a.pk}/{row.pk}/delete").status_code == 404
    assert ContactFile.objects.count() == 1
    assert not AccessLogEntry.objects.exists()


@pytest.mark.obligation("TEN-1")
def test_a_file_under_another_contacts_url_is_404(client, staff_a, contact_a, org_a):
    from contacts.services import contact_create

    other = contact_create(
        organisation=org_a,
        data={"first_name": "Eva", "email": "eva@example.test"},
        source_kind="staff",
    )
    row = _add(contact_a)
    login(client, staff_a)
    assert client.get(_download(other, row), {"purpose": "care"}).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, contact_a):
    row = _add(contact_a)
    for path in (_download(contact_a, row), f"/files/contacts/{contact_a.pk}/"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(_upload_url(contact_a), {"kind": "document", "file": upload(PDF)})
    assert response.status_code == 302
    assert ContactFile.objects.count() == 1


# --- upload ---------------------------------------------------------------------------------------


def test_staff_uploads_and_returns_to_the_contact(client, staff_a, contact_a):
    login(client, staff_a)
    response = client.post(
        _upload_url(contact_a), {"kind": "document", "file": upload(PDF, "izvid.pdf")}
    )
    assert response.status_code == 302
    assert str(contact_a.pk) in response["Location"]
    row = ContactFile.objects.get()
    assert row.contact == contact_a and row.uploaded_by == staff_a
    assert row.original_name == "izvid.pdf"


def test_dpo_may_download_but_not_upload(client, dpo_a, contact_a):
    login(client, dpo_a)
    response = client.post(_upload_url(contact_a), {"kind": "document", "file": upload(PDF)})
    assert response.status_code == 403
    assert not ContactFile.objects.exists()


def test_a_renamed_program_is_refused_with_the_reason(client, staff_a, contact_a):
    login(client, staff_a)
    response = client.post(
        _upload_url(contact_a), {"kind": "document", "file": upload(WINDOWS_EXE, "izvid.pdf")}
    )
    assert response.status_code == 400
    assert "a Windows program" in response.content.decode()
    assert not ContactFile.objects.exists()


def test_too_large_is_refused_naming_the_limit(client, staff_a, contact_a, settings):
    settings.CONTACT_FILE_MAX_BYTES = 100
    login(client, staff_a)
    response = client.post(
        _upload_url(contact_a), {"kind": "document", "file": upload(PDF + bytes(200))}
    )
    assert response.status_code == 400
    assert "at most 100 bytes" in response.content.decode().replace("0 MB (", "")
    assert not ContactFile.objects.exists()


def test_a_restricted_contact_refuses_uploads(client, staff_a, contact_a):
    from carely.audit.context import Actor, acting_as

    with acting_as(Actor.user(staff_a.pk)):
        contact_restrict(contact=contact_a, reason="Art. 18(1)(a)")
    login(client, staff_a)
    response = client.post(_upload_url(contact_a), {"kind": "document", "file": upload(PDF)})
    assert response.status_code == 409
    assert "restricted" in response.content.decode()
    assert not ContactFile.objects.exists()


# --- the files page, delete, the panel ---------------------------------------------------------


@pytest.mark.obligation("CNT-3")
def test_files_page_lists_the_files_and_logs_the_view(client, staff_a, contact_a, contact_b):
    mine = _add(contact_a, name="Ana izvid.pdf")
    _add(contact_b, name="Bor izvid.pdf")
    login(client, staff_a)
    response = client.get(f"/files/contacts/{contact_a.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ana izvid.pdf" in page and "Bor izvid.pdf" not in page
    assert _download(contact_a, mine) in page
    assert 'enctype="multipart/form-data"' in page
    entry = AccessLogEntry.objects.get()
    assert (entry.action, entry.subject_id, entry.what) == ("view", str(contact_a.pk), ["files"])


def test_dpo_sees_the_list_without_the_upload_form(client, dpo_a, contact_a):
    _add(contact_a)
    login(client, dpo_a)
    page = client.get(f"/files/contacts/{contact_a.pk}/").content.decode()
    assert "Ana Novak izvid.pdf" in page and 'enctype="multipart/form-data"' not in page


def test_delete_removes_row_and_file(
    client, staff_a, contact_a, local_storage, django_capture_on_commit_callbacks
):
    row = _add(contact_a)
    stored = local_storage / row.stored_file.name
    assert stored.exists()
    login(client, staff_a)
    assert client.get(f"/files/contacts/{contact_a.pk}/{row.pk}/delete").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/files/contacts/{contact_a.pk}/{row.pk}/delete")
    assert response.status_code == 302
    assert not ContactFile.objects.exists() and not stored.exists()


def test_dpo_may_not_delete(client, dpo_a, contact_a):
    row = _add(contact_a)
    login(client, dpo_a)
    assert client.post(f"/files/contacts/{contact_a.pk}/{row.pk}/delete").status_code == 403
    assert ContactFile.objects.filter(pk=row.pk).exists()


def test_the_panel_renders_as_an_include(contact_a, staff_a):
    row = _add(contact_a)
    request = RequestFactory().get("/")
    request.user = staff_a
    html = render_to_string(
        "files/contact_files_panel.html",
        {"contact": contact_a, "files": [row], "can_edit": True},
        request=request,
    )
    assert "Ana Novak izvid.pdf" in html and _download(contact_a, row) in html
    assert _upload_url(contact_a) in html and "At most 25 MB" in html
