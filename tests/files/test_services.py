"""Attaching files to contacts through the service (CNT-5): type by content, size, restriction,
suspension, audit; deletion takes the stored object with it."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from carely.audit.models import AuditEvent
from carely.orgs.suspension import OrganisationSuspended
from contacts.services import contact_restrict
from files.models import ContactFile
from files.selectors import contact_file_list
from files.services import (
    ContactRestrictedForFiles,
    FileTooLarge,
    FileTypeRefused,
    contact_file_add,
    contact_file_delete,
)
from tests.files.conftest import (
    JPEG,
    LINUX_ELF,
    M4A,
    MP3,
    OGG,
    PDF,
    PNG,
    WAV,
    WINDOWS_EXE,
    docx_bytes,
    upload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("CNT-5")]


def _add(contact, content, name="izvid.pdf", kind="document", by=None):
    return contact_file_add(
        contact=contact, upload=upload(content, name), kind=kind, uploaded_by=by
    )


def test_a_document_is_stored_under_a_random_key_with_its_sniffed_type(contact_a, staff_a):
    row = _add(contact_a, PDF, name="Ana Novak - izvid.pdf", by=staff_a)
    row.refresh_from_db()
    assert row.organisation_id == contact_a.organisation_id
    assert row.original_name == "Ana Novak - izvid.pdf"
    assert row.content_type == "application/pdf"
    assert row.size == len(PDF) and row.sha256 == hashlib.sha256(PDF).hexdigest()
    assert row.uploaded_by == staff_a
    key = row.stored_file.name
    assert key.startswith(f"contact-files/{contact_a.organisation_id}/{contact_a.pk}/")
    assert "Novak" not in key and "izvid" not in key and not key.endswith(".pdf")
    with default_storage.open(key, "rb") as stored:
        assert stored.read() == PDF


def test_the_original_name_is_encrypted_at_rest(contact_a):
    from django.db import connection

    row = _add(contact_a, PDF, name="Ana Novak.pdf")
    with connection.cursor() as cursor:
        cursor.execute("SELECT original_name FROM files_contactfile WHERE id = %s", [row.pk])
        (raw,) = cursor.fetchone()
    assert "Novak" not in raw


@pytest.mark.parametrize(
    ("content", "kind", "expected"),
    [
        (PDF, "document", "application/pdf"),
        (PNG, "document", "image/png"),
        (JPEG, "document", "image/jpeg"),
        ("Kontrola čez 14 dni.\n".encode(), "document", "text/plain"),
        (
            docx_bytes(),
            "document",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (MP3, "recording", "audio/mpeg"),
        (M4A, "recording", "audio/mp4"),
        (WAV, "recording", "audio/wav"),
        (OGG, "recording", "audio/ogg"),
    ],
)
def test_the_allow_list_by_content(contact_a, content, kind, expected):
    row = _add(contact_a, content, name="whatever.bin", kind=kind)
    assert row.content_type == expected


@pytest.mark.parametrize(
    ("content", "what"),
    [(WINDOWS_EXE, "a Windows program"), (LINUX_ELF, "a Linux program")],
)
def test_a_program_renamed_to_pdf_is_refused_by_its_content(contact_a, content, what):
    with pytest.raises(FileTypeRefused) as caught:
        _add(contact_a, content, name="izvid.pdf")
    message = str(caught.value)
    assert what in message and "whatever its name says" in message
    assert "PDF, PNG, JPEG, plain text or Word (DOCX)" in message
    assert ContactFile.objects.count() == 0


@pytest.mark.parametrize(
    "content",
    [b"<!DOCTYPE html><script>alert(1)</script>", b"#!/bin/sh\nrm -rf /\n", b"GIF89a" + bytes(9)],
)
def test_markup_scripts_and_other_types_are_refused(contact_a, content):
    with pytest.raises(FileTypeRefused):
        _add(contact_a, content, name="notes.txt")


def test_a_recording_must_be_audio_and_a_document_must_not_be(contact_a):
    with pytest.raises(FileTypeRefused, match="a recording must be MP3, M4A, WAV or OGG audio"):
        _add(contact_a, PDF, kind="recording")
    with pytest.raises(FileTypeRefused, match="an MP3 recording"):
        _add(contact_a, MP3, kind="document")


def test_too_large_is_refused_naming_the_limit(contact_a, settings):
    settings.CONTACT_FILE_MAX_BYTES = 1024 * 1024
    big = PDF + bytes(1024 * 1024)
    with pytest.raises(FileTooLarge) as caught:
        _add(contact_a, big)
    assert "at most 1 MB (1,048,576 bytes)" in str(caught.value)
    assert ContactFile.objects.count() == 0
    assert _add(contact_a, PDF + bytes(1024 * 1024 - len(PDF))).size == 1024 * 1024


def test_the_default_limit_is_25_mb(contact_a):
    from files.services import max_bytes

    assert max_bytes() == 25 * 1024 * 1024


def test_an_empty_file_is_refused(contact_a):
    with pytest.raises(FileTypeRefused, match="empty"):
        _add(contact_a, b"")


def test_a_restricted_contact_takes_no_file(contact_a, as_staff_a):
    contact_restrict(contact=contact_a, reason="Disputes accuracy (Art. 18(1)(a))")
    contact_a.refresh_from_db()
    with pytest.raises(ContactRestrictedForFiles, match="restricted"):
        _add(contact_a, PDF)
    assert ContactFile.objects.count() == 0


def test_a_suspended_organisation_cannot_add(contact_a, org_a):
    org_a.suspended_at = timezone.now()
    org_a.save()
    contact_a.organisation.refresh_from_db()
    with pytest.raises(OrganisationSuspended):
        _add(contact_a, PDF)
    assert ContactFile.objects.count() == 0


def test_the_audit_event_holds_ids_only(contact_a, as_staff_a):
    row = _add(contact_a, PDF, name="Ana Novak.pdf", by=as_staff_a)
    event = AuditEvent.objects.get(action="contact_file.added")
    assert event.object_id == str(row.pk) and event.actor_id == str(as_staff_a.pk)
    assert event.details["contact_id"] == contact_a.pk
    assert "Novak" not in str(event.details)


def test_delete_removes_the_row_and_the_stored_object(
    contact_a, django_capture_on_commit_callbacks
):
    row = _add(contact_a, PDF)
    key = row.stored_file.name
    with django_capture_on_commit_callbacks(execute=True):
        contact_file_delete(contact_file=row)
    assert not ContactFile.objects.exists()
    assert not default_storage.exists(key)
    assert AuditEvent.objects.filter(action="contact_file.deleted").count() == 1


def test_the_selector_lists_one_contacts_files_of_one_organisation(contact_a, contact_b, org_a):
    mine = _add(contact_a, PDF)
    _add(contact_b, PDF)
    assert list(contact_file_list(organisation=org_a, contact=contact_a)) == [mine]
    assert list(contact_file_list(organisation=org_a, contact=contact_b)) == []
