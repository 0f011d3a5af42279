"""An upload larger than its view's limit is refused from Content-Length alone, before any of
its body is read (CNT-2 imports, CNT-5 files): nothing is spooled, nothing is saved."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import Contact, ImportJob
from files.models import ContactFile
from tests.conftest import login
from tests.files.conftest import api_client

pytestmark = pytest.mark.django_db


class BodyNeverRead:
    """A request body that fails the test if anything reads it."""

    def read(self, *args, **kwargs):
        raise AssertionError("the oversized body was read")

    readline = read


def _post_declaring(client, url: str, length: int, **extra):
    return client.generic(
        "POST",
        url,
        b"",
        content_type="multipart/form-data; boundary=BoUnDaRy",
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": BodyNeverRead()},
        **extra,
    )


@pytest.fixture
def contact_a(org_a):
    return Contact.objects.create(organisation=org_a, first_name="Ana", email="ana@primer.si")


@pytest.mark.obligation("CNT-2")
def test_an_oversized_csv_upload_is_refused_unread(client, staff_a, settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 1024 * 1024
    login(client, staff_a)
    response = _post_declaring(client, reverse("contacts:import_upload"), 50 * 1024 * 1024)
    assert response.status_code == 413
    page = response.content.decode()
    assert "The upload is 50 MB; files may be at most 1 MB (1,048,576 bytes)." in page
    assert "Nothing was saved" in page
    assert not ImportJob.objects.exists()


@pytest.mark.obligation("CNT-5")
def test_an_oversized_file_upload_is_refused_unread(client, staff_a, contact_a, settings):
    settings.CONTACT_FILE_MAX_BYTES = 2 * 1024 * 1024
    login(client, staff_a)
    url = reverse("files:upload", args=[contact_a.pk])
    response = _post_declaring(client, url, 3 * 1024 * 1024)
    assert response.status_code == 413
    assert "files may be at most 2 MB" in response.content.decode()
    assert not ContactFile.objects.exists()


@pytest.mark.obligation("CNT-5")
def test_an_oversized_api_file_upload_is_a_413_problem_unread(org_a, contact_a, settings):
    settings.CONTACT_FILE_MAX_BYTES = 2 * 1024 * 1024
    api = api_client(org_a)
    response = _post_declaring(api, f"/api/v1/contacts/{contact_a.pk}/files/", 40 * 1024 * 1024)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "file_too_large" and "at most 2 MB" in body["detail"]
    assert not ContactFile.objects.exists()


@pytest.mark.obligation("CNT-5")
def test_a_body_within_the_limit_reaches_the_view(client, staff_a, contact_a, settings):
    """Room is left for the form's other fields: a file just under the limit is not refused
    early (the view then checks the file's own size exactly)."""
    settings.CONTACT_FILE_MAX_BYTES = 2 * 1024 * 1024
    login(client, staff_a)
    from tests.files.conftest import PDF, upload

    response = client.post(
        reverse("files:upload", args=[contact_a.pk]),
        {"kind": "document", "file": upload(PDF + bytes(2 * 1024 * 1024 - len(PDF)))},
    )
    assert response.status_code == 302
    assert ContactFile.objects.get().size == 2 * 1024 * 1024
