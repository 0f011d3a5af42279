"""CSV import through the staff screens (CNT-2): upload, columns, background run, result.

The Celery task runs synchronously inside the on-commit callback, so each test goes through the same
path as production: view -> service -> on_commit -> task -> service.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from carely.audit.models import AuditEvent
from contacts import imports
from contacts.models import Contact, ImportJob, ImportState
from contacts.tasks import contact_import_run_task
from tests.conftest import login

pytestmark = [pytest.mark.obligation("CNT-2"), pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _storage_and_synchronous_task(settings, tmp_path, monkeypatch):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    # The task runs synchronously where the on-commit hook enqueues it (no broker needed).
    monkeypatch.setattr(contact_import_run_task, "delay", contact_import_run_task)


def _upload(client, content: bytes, name: str = "patients.csv"):
    return client.post(
        reverse("contacts:import_upload"), {"file": SimpleUploadedFile(name, content)}
    )


def _start(client, job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("contacts:import_start", args=[job.pk]))
    assert len(callbacks) == 1
    return response


def _import(client, content: bytes, django_capture_on_commit_callbacks) -> ImportJob:
    response = _upload(client, content)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.latest("pk")
    assert response["Location"] == reverse("contacts:import_mapping", args=[job.pk])
    assert job.state == ImportState.MAPPED  # the header names were recognised
    response = _start(client, job, django_capture_on_commit_callbacks)
    assert response["Location"] == reverse("contacts:import_progress", args=[job.pk])
    job.refresh_from_db()
    return job


def _under_13() -> str:
    today = dt.date.today()
    return today.replace(year=today.year - 5, day=1).isoformat()


def _acceptance_csv() -> bytes:
    lines = [
        "Ime;Priimek;E-pošta;Telefon;Datum rojstva",
        "Ana;Novak;ana@example.si;041 123 456;1980-05-01",  # 2 created
        "Žiga;Čebašek;ziga@example.si;;1990-01-02",  # 3 created (Windows-1250 name)
        "Bor;=cmd();bor@example.si;12345;1985-01-01",  # 4 bad phone
        "Mala;Deklica;mala@example.si;;" + _under_13(),  # 5 under 13
        "Eva;Kos;eva@example.si;;1970-01-01;surplus",  # 6 unreadable: too many cells
        "Brez;Kanala;;;1975-03-03",  # 7 no e-mail and no phone
        "Ana;Novak;ana@example.si;041 123 456;1980-05-01",  # 8 duplicate of row 2
        "Ana;Novak-Kranjc;ANA@example.si;;",  # 9 same e-mail: updates the contact
    ]
    return ("\r\n".join(lines) + "\r\n").encode("cp1250")


@pytest.fixture(params=["in_process", "forked"])
def reader(request, settings):
    """Both ways the worker reads a file: in its own process (small files) and in a forked
    child one batch ahead (files of at least CONTACT_IMPORT_PARALLEL_MIN_BYTES)."""
    settings.CONTACT_IMPORT_PARALLEL_MIN_BYTES = 0 if request.param == "forked" else 10**12
    return request.param


@pytest.fixture
def staff_client(client, staff_a):
    login(client, staff_a)
    return client


def test_acceptance_csv_imports_good_rows_and_reports_each_bad_one(
    staff_client, org_a, django_capture_on_commit_callbacks, reader
):
    job = _import(staff_client, _acceptance_csv(), django_capture_on_commit_callbacks)

    assert job.state == ImportState.COMPLETED, job.error
    assert job.encoding == "cp1250"
    assert (job.total, job.created, job.updated, job.unchanged, job.rejected) == (8, 2, 1, 1, 4)
    contacts = {c.email: c for c in Contact.objects.for_organisation(org_a)}
    assert set(contacts) == {"ana@example.si", "ziga@example.si"}
    assert contacts["ziga@example.si"].last_name == "Čebašek"
    assert contacts["ziga@example.si"].first_name == "Žiga"
    assert contacts["ana@example.si"].last_name == "Novak-Kranjc"
    assert contacts["ana@example.si"].phone == "+38641123456"  # the blank cell erased nothing
    assert not job.upload.name  # the uploaded list is deleted once imported

    page = staff_client.get(reverse("contacts:import_result", args=[job.pk]))
    assert page.status_code == 200
    rows = [(p["row"], p["field"]) for p in page.context["problems"]]
    assert rows == [
        (4, "Phone"),
        (5, "Date of birth"),
        (6, "whole row"),
        (7, "E-mail"),
        (7, "Phone"),
    ]
    html = page.content.decode()
    assert "Download the rejected rows" in html

    download = staff_client.get(reverse("contacts:import_rejected_csv", args=[job.pk]))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    text = b"".join(download.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    # The report uses the uploaded file's ";" so Slovenian Excel opens it in columns.
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert table[0] == ["row", "errors", "Ime", "Priimek", "E-pošta", "Telefon", "Datum rojstva"]
    assert [r[0] for r in table[1:]] == ["4", "5", "6", "7"]
    assert table[1][1].startswith("phone: ")
    assert table[1][3] == "'=cmd()"  # formula-safe: a spreadsheet shows it as text
    assert table[2][1].startswith("birth_date: ")
    assert "cells" in table[3][1]
    assert "email: " in table[4][1] and "phone: " in table[4][1]
    assert not any(cell.startswith(("=", "+", "@")) for row in table[1:] for cell in row)


def test_semicolon_utf8_with_bom(staff_client, org_a, django_capture_on_commit_callbacks):
    content = "\ufeffFirst name;Last name;Email;GSM\nMaja;Zupan;maja@example.si;+386 31 555 666\n"
    job = _import(staff_client, content.encode("utf-8"), django_capture_on_commit_callbacks)
    assert job.encoding == "utf-8-sig" and job.delimiter == ";"
    assert job.mapping == {
        "First name": "first_name",
        "Last name": "last_name",
        "Email": "email",
        "GSM": "phone",
    }
    assert (job.state, job.created, job.rejected) == (ImportState.COMPLETED, 1, 0)
    contact = Contact.objects.for_organisation(org_a).get()
    assert (contact.first_name, contact.phone) == ("Maja", "+38631555666")
    assert contact.source_kind == "import"


def test_upload_shows_detection_and_preview_then_mapping_can_change(staff_client, org_a):
    content = "Ime,Priimek,Opomba,Telefon\nAna,Novak,x,041 123 456\nBor,Kos,y,12\n"
    response = _upload(staff_client, content.encode("utf-8"))
    job = ImportJob.objects.latest("pk")
    page = staff_client.get(response["Location"])
    html = page.content.decode()
    assert "UTF-8" in html and "comma" in html
    assert [r["row"] for r in page.context["rows"]] == [2, 3]
    assert page.context["rows"][0]["cells"][2] == ("+38641123456", [])  # as it will be stored
    assert page.context["rows"][1]["cells"][2][1]  # the bad phone is flagged in the preview
    assert job.mapping["Opomba"] == ""

    mapping = {"column_0": "first_name", "column_1": "last_name", "column_2": "", "column_3": ""}
    response = staff_client.post(reverse("contacts:import_mapping", args=[job.pk]), mapping)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.mapping == {"Ime": "first_name", "Priimek": "last_name", "Opomba": "", "Telefon": ""}


def test_two_columns_to_one_field_is_a_clear_error(staff_client, org_a):
    _upload(staff_client, b"Ime,Priimek,Email\nAna,Novak,a@example.si\n")
    job = ImportJob.objects.latest("pk")
    response = staff_client.post(
        reverse("contacts:import_mapping", args=[job.pk]),
        {"column_0": "first_name", "column_1": "first_name", "column_2": "email"},
    )
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert errors == ["Columns 'Ime' and 'Priimek' are all mapped to first_name; choose one."]
    assert "all mapped to first_name" in response.content.decode()
    job.refresh_from_db()
    assert job.mapping["Priimek"] == "last_name"  # unchanged


def test_too_large_upload_is_a_clear_error(staff_client, org_a, settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 100
    content = b"Ime;Email\n" + b"Ana;ana@example.si\n" * 20
    response = _upload(staff_client, content)
    assert response.status_code == 200
    [error] = response.context["form"].errors["file"]
    assert "larger than the 100 bytes limit" in error
    assert not ImportJob.objects.exists()


def test_unreadable_file_is_a_clear_error(staff_client, org_a):
    response = _upload(staff_client, b"PK\x03\x04 this is a workbook", name="list.xlsx")
    assert response.status_code == 200
    assert "Excel workbook" in response.context["form"].errors["file"][0]


def test_progress_status_and_result_pages(staff_client, org_a, django_capture_on_commit_callbacks):
    _upload(staff_client, b"Ime;Email\nAna;ana@example.si\n")
    job = ImportJob.objects.latest("pk")
    # Queued but not yet run: the progress page polls the status.
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(reverse("contacts:import_start", args=[job.pk]))
    progress = staff_client.get(reverse("contacts:import_progress", args=[job.pk]))
    html = progress.content.decode()
    assert progress.status_code == 200
    assert "<progress" in html and "import-progress.js" in html
    assert 'http-equiv="refresh"' in html  # inside <noscript>
    status = staff_client.get(reverse("contacts:import_status", args=[job.pk])).json()
    assert status["state"] == "mapped" and status["finished"] is False
    assert staff_client.get(reverse("contacts:import_result", args=[job.pk]))["Location"] == (
        reverse("contacts:import_progress", args=[job.pk])
    )
    # Starting twice does not queue twice.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        staff_client.post(reverse("contacts:import_start", args=[job.pk]))
    assert callbacks == []

    contact_import_run_task(job.pk)
    contact_import_run_task(job.pk)  # a redelivered message finds the job claimed
    status = staff_client.get(reverse("contacts:import_status", args=[job.pk])).json()
    assert status | {"result_url": ""} == {
        "state": "completed",
        "finished": True,
        "percent": 100,
        "processed": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "result_url": "",
    }
    progress = staff_client.get(reverse("contacts:import_progress", args=[job.pk]))
    assert progress["Location"] == reverse("contacts:import_result", args=[job.pk])
    assert Contact.objects.for_organisation(org_a).count() == 1


def test_audit_holds_ids_and_counts_only(staff_client, org_a, django_capture_on_commit_callbacks):
    job = _import(staff_client, _acceptance_csv(), django_capture_on_commit_callbacks)
    started = AuditEvent.objects.get(action="contacts.import_started")
    completed = AuditEvent.objects.get(action="contacts.import_completed")
    assert started.object_id == completed.object_id == str(job.pk)
    assert completed.details == {
        "total": 8,
        "created": 2,
        "updated": 1,
        "unchanged": 1,
        "rejected": 4,
    }
    assert "example.si" not in str(started.details) + str(completed.details)


def test_batches_stream_and_report_progress(
    staff_client, org_a, django_capture_on_commit_callbacks, monkeypatch, reader
):
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    seen: list[int] = []
    real = imports.contacts_bulk_apply

    def spy(**kwargs):
        seen.append(kwargs["prepared"].size)
        return real(**kwargs)

    monkeypatch.setattr(imports, "contacts_bulk_apply", spy)
    lines = ["Ime;Email"] + [f"P{i};p{i}@example.si" for i in range(8)]
    job = _import(staff_client, "\n".join(lines).encode(), django_capture_on_commit_callbacks)
    assert seen == [3, 3, 2]
    assert (job.created, job.bytes_read, job.file_size) == (8, job.file_size, len("\n".join(lines)))


def test_a_broken_quote_mid_file_stops_the_import_after_the_rows_before_it(
    staff_client, org_a, django_capture_on_commit_callbacks, monkeypatch, reader
):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    lines = ["Ime;Email"] + [f"P{i};p{i}@example.si" for i in range(5)]
    # A quote never closed swallows the rest of the file until the reader's cell limit.
    lines += ['"Broken;broken@example.si'] + ["x;y"] * 40_000
    job = _import(staff_client, "\n".join(lines).encode(), django_capture_on_commit_callbacks)
    assert job.state == ImportState.FAILED
    assert job.error.startswith("The import stopped: Row 7:"), job.error
    assert job.error.endswith("Rows before that point were imported.")
    emails = {c.email for c in Contact.objects.for_organisation(org_a)}
    assert emails == {f"p{i}@example.si" for i in range(5)}
    assert job.created == 5


def test_a_crash_while_reading_fails_the_job_instead_of_hanging(
    staff_client, org_a, django_capture_on_commit_callbacks, monkeypatch, reader, caplog
):
    def broken(**kwargs):
        raise ZeroDivisionError("a bug in validation")

    monkeypatch.setattr(imports, "contacts_bulk_prepare", broken)
    content = b"Ime;Email\nAna;ana@example.si\n"
    job = _import(staff_client, content, django_capture_on_commit_callbacks)
    assert job.state == ImportState.FAILED
    assert job.error.startswith("The import stopped because of an error on our side")
    assert "ZeroDivisionError: a bug in validation" in caplog.text  # the child's traceback too
    assert not Contact.objects.for_organisation(org_a).exists()


def test_organisation_suspended_before_the_run_fails_the_job_clearly(
    staff_client, org_a, django_capture_on_commit_callbacks
):

    _upload(staff_client, b"Ime;Email\nAna;ana@example.si\n")
    job = ImportJob.objects.latest("pk")
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(reverse("contacts:import_start", args=[job.pk]))
    org_a.suspended_at = dt.datetime.now(dt.UTC)
    org_a.save()
    contact_import_run_task(job.pk)
    job.refresh_from_db()
    assert job.state == ImportState.FAILED
    assert job.error.startswith("The import stopped:")
    assert not Contact.objects.for_organisation(org_a).exists()
    assert not job.upload.name
    page = staff_client.get(reverse("contacts:import_result", args=[job.pk]))
    assert "Import stopped" in page.content.decode()
    assert AuditEvent.objects.filter(action="contacts.import_failed").count() == 1


def test_purge_deletes_files_and_keeps_counts(
    staff_client, org_a, django_capture_on_commit_callbacks, settings
):
    from django.core.files.storage import default_storage

    job = _import(staff_client, _acceptance_csv(), django_capture_on_commit_callbacks)
    name = job.rejected_file.name
    assert name.startswith(f"contact-imports/org-{org_a.pk}/") and default_storage.exists(name)
    assert imports.contact_imports_purge() == 0
    later = job.finished_at + dt.timedelta(days=8)
    assert imports.contact_imports_purge(now=later) == 1
    job.refresh_from_db()
    assert not default_storage.exists(name) and not job.rejected_file.name
    assert job.rejected == 4
    page = staff_client.get(reverse("contacts:import_result", args=[job.pk]))
    assert "has been deleted" in page.content.decode()
    assert (
        staff_client.get(reverse("contacts:import_rejected_csv", args=[job.pk])).status_code == 404
    )


def test_a_job_whose_worker_died_is_failed_by_the_purge(
    staff_client, org_a, django_capture_on_commit_callbacks
):
    _upload(staff_client, b"Ime;Email\nAna;ana@example.si\n")
    job = ImportJob.objects.latest("pk")
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(reverse("contacts:import_start", args=[job.pk]))
    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=7)
    ImportJob.objects.filter(pk=job.pk).update(state=ImportState.RUNNING, started_at=started)
    imports.contact_imports_purge()
    job.refresh_from_db()
    assert job.state == ImportState.FAILED and job.error == imports.STALLED_MESSAGE
    assert not job.upload.name
    assert staff_client.get(reverse("contacts:import_status", args=[job.pk])).json()["finished"]


# --- persona matrix -------------------------------------------------------------------------


def _names(job_id: int) -> list[tuple[str, str, list[int]]]:
    return [
        ("get", "contacts:import_mapping", [job_id]),
        ("get", "contacts:import_progress", [job_id]),
        ("get", "contacts:import_status", [job_id]),
        ("get", "contacts:import_result", [job_id]),
        ("get", "contacts:import_rejected_csv", [job_id]),
        ("post", "contacts:import_mapping", [job_id]),
        ("post", "contacts:import_start", [job_id]),
    ]


@pytest.fixture
def job_a(org_a, staff_a, settings):
    return imports.contact_import_upload(
        organisation=org_a,
        user=staff_a,
        uploaded=SimpleUploadedFile("Novak Ana.csv", b"Ime;Email\nAna;ana@example.si\n"),
    )


def test_anonymous_goes_to_login(client, job_a):
    for method, name, args in [("get", "contacts:import_upload", []), *_names(job_a.pk)]:
        response = getattr(client, method)(reverse(name, args=args))
        assert response.status_code == 302, name
        assert "/login" in response["Location"] or "accounts" in response["Location"], name


def test_dpo_lacks_contacts_edit(client, dpo_a, job_a):
    login(client, dpo_a)
    for method, name, args in [("get", "contacts:import_upload", []), *_names(job_a.pk)]:
        assert getattr(client, method)(reverse(name, args=args)).status_code == 403, name
    job_a.refresh_from_db()
    assert job_a.queued_at is None


def test_admin_may_import(client, admin_a, org_a):
    login(client, admin_a)
    assert client.get(reverse("contacts:import_upload")).status_code == 200


@pytest.mark.obligation("TEN-1")
def test_other_organisation_job_is_404(client, staff_b, job_a):
    login(client, staff_b)
    for method, name, args in _names(job_a.pk):
        assert getattr(client, method)(reverse(name, args=args)).status_code == 404, name
    job_a.refresh_from_db()
    assert job_a.queued_at is None and job_a.state == ImportState.MAPPED


@pytest.mark.obligation("TEN-1")
def test_job_stored_under_its_organisation_and_never_public(job_a, org_a):
    assert job_a.upload.name.startswith(f"contact-imports/org-{org_a.pk}/")
    assert (
        "Novak" not in job_a.upload.name
    )  # the clinic's file name (maybe a patient's) is not kept


def test_suspended_organisation_cannot_upload_or_start(client, staff_a, org_a, job_a):
    login(client, staff_a)
    org_a.suspended_at = dt.datetime.now(dt.UTC)
    org_a.save()
    assert _upload(client, b"Ime;Email\nAna;ana@example.si\n").status_code == 403
    assert client.post(reverse("contacts:import_start", args=[job_a.pk])).status_code == 403
    job_a.refresh_from_db()
    assert job_a.queued_at is None
