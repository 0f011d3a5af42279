"""``/api/v1/contacts/{id}/files/`` and ``/api/v1/files/{id}/`` (CNT-5, CNT-3, TEN-1, SEC-3)."""

from __future__ import annotations

import pytest

from carely.audit.models import AccessLogEntry
from contacts.services import contact_restrict
from files.models import ContactFile
from files.services import contact_file_add
from tests.files.conftest import PDF, WINDOWS_EXE, api_client, upload

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("CNT-5")]

PROBLEM = "application/problem+json"


def _add(contact, content=PDF, name="Ana Novak izvid.pdf"):
    return contact_file_add(
        contact=contact, upload=upload(content, name), kind="document", uploaded_by=None
    )


def _list_url(contact):
    return f"/api/v1/contacts/{contact.pk}/files/"


def _post(api, contact, content=PDF, name="izvid.pdf", kind="document"):
    return api.post(
        _list_url(contact), {"kind": kind, "file": upload(content, name)}, format="multipart"
    )


@pytest.fixture
def api_a(org_a):
    return api_client(org_a)


@pytest.fixture
def api_b(org_b):
    return api_client(org_b)


def test_upload_returns_the_metadata(api_a, contact_a):
    response = _post(api_a, contact_a, name="Ana Novak.pdf")
    assert response.status_code == 201, response.json()
    data = response.json()
    row = ContactFile.objects.get(pk=data["id"])
    assert data["contact"] == contact_a.pk and data["name"] == "Ana Novak.pdf"
    assert data["content_type"] == "application/pdf" and data["size"] == len(PDF)
    assert data["sha256"] == row.sha256 and data["kind"] == "document"
    assert data["content_url"] == f"/api/v1/files/{row.pk}/content"
    assert row.uploaded_by is None


@pytest.mark.obligation("CNT-3")
def test_list_is_one_contacts_files_logged_once_in_constant_queries(
    api_a, contact_a, contact_b, django_assert_max_num_queries
):
    for _ in range(3):
        _add(contact_a)
    _add(contact_b)
    with django_assert_max_num_queries(8):
        response = api_a.get(_list_url(contact_a))
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3 and {r["contact"] for r in results} == {contact_a.pk}
    entry = AccessLogEntry.objects.get()
    assert (entry.subject_type, entry.subject_id, entry.what) == (
        "contact",
        str(contact_a.pk),
        ["files"],
    )


def test_list_query_count_does_not_grow_with_files(api_a, contact_a, django_assert_num_queries):
    _add(contact_a)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api_a.get(_list_url(contact_a))  # the key's first use writes last_used_at
    with CaptureQueriesContext(connection) as one:
        api_a.get(_list_url(contact_a))
    for _ in range(5):
        _add(contact_a)
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(api_a.get(_list_url(contact_a)).json()["results"]) == 6


@pytest.mark.obligation("CNT-3")
def test_metadata_read_is_access_logged(api_a, contact_a):
    row = _add(contact_a)
    response = api_a.get(f"/api/v1/files/{row.pk}/")
    assert response.status_code == 200 and response.json()["name"] == "Ana Novak izvid.pdf"
    entry = AccessLogEntry.objects.get()
    assert (entry.action, entry.subject_id, entry.what) == (
        "view",
        str(contact_a.pk),
        [f"file:{row.pk}"],
    )


@pytest.mark.obligation("CNT-3")
def test_content_streams_the_bytes_and_logs_a_download_for_the_api(api_a, contact_a):
    row = _add(contact_a)
    response = api_a.get(f"/api/v1/files/{row.pk}/content", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    entry = AccessLogEntry.objects.get()
    assert (entry.action, entry.purpose, entry.actor_type) == ("download", "api", "api_key")
    assert entry.what == [f"file:{row.pk}"]


def test_a_renamed_program_is_a_problem_naming_the_field(api_a, contact_a):
    response = _post(api_a, contact_a, content=WINDOWS_EXE, name="izvid.pdf")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    (error,) = response.json()["errors"]
    assert error["field"] == "file" and "a Windows program" in error["message"]
    assert not ContactFile.objects.exists()


def test_too_large_is_413_naming_the_limit(api_a, contact_a, settings):
    settings.CONTACT_FILE_MAX_BYTES = 2 * 1024 * 1024
    response = _post(api_a, contact_a, content=PDF + bytes(2 * 1024 * 1024))
    assert response.status_code == 413 and response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "file_too_large"
    assert "at most 2 MB" in response.json()["detail"]
    assert not ContactFile.objects.exists()


def test_a_missing_file_or_kind_is_a_problem(api_a, contact_a):
    response = api_a.post(_list_url(contact_a), {"kind": "document"}, format="multipart")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"file"}
    response = _post(api_a, contact_a, kind="x-ray")
    assert {e["field"] for e in response.json()["errors"]} == {"kind"}


def test_a_restricted_contact_is_409(api_a, contact_a, as_staff_a):
    contact_restrict(contact=contact_a, reason="Art. 18(1)(a)")
    response = _post(api_a, contact_a)
    assert response.status_code == 409 and response.json()["code"] == "contact_restricted"
    assert not ContactFile.objects.exists()


@pytest.mark.obligation("SEC-3")
def test_scopes(org_a, contact_a):
    row = _add(contact_a)
    read_only = api_client(org_a, scopes=["files:read"])
    assert _post(read_only, contact_a).json()["code"] == "missing_scope"
    assert ContactFile.objects.count() == 1
    contacts_only = api_client(org_a, scopes=["contacts:read", "contacts:write"])
    for path in (
        _list_url(contact_a),
        f"/api/v1/files/{row.pk}/",
        f"/api/v1/files/{row.pk}/content",
    ):
        response = contacts_only.get(path)
        assert response.status_code == 403 and response.json()["code"] == "missing_scope", path
    assert not AccessLogEntry.objects.exists()


def test_anonymous_is_401(anon_client, contact_a):
    row = _add(contact_a)
    for path in (
        _list_url(contact_a),
        f"/api/v1/files/{row.pk}/",
        f"/api/v1/files/{row.pk}/content",
    ):
        assert anon_client.get(path).status_code == 401, path


@pytest.mark.obligation("TEN-1")
def test_another_organisations_contact_and_files_are_404_and_nothing_changes(api_b, contact_a):
    row = _add(contact_a)
    for path in (
        _list_url(contact_a),
        f"/api/v1/files/{row.pk}/",
        f"/api/v1/files/{row.pk}/content",
    ):
        response = api_b.get(path)
        assert response.status_code == 404 and response["Content-Type"] == PROBLEM, path
    assert _post(api_b, contact_a).status_code == 404
    assert ContactFile.objects.count() == 1
    assert not AccessLogEntry.objects.exists()


@pytest.fixture
def anon_client():
    from rest_framework.test import APIClient

    return APIClient()
