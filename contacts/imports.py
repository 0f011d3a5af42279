"""CSV imports into the register (CNT-2): upload, map columns, run in the background, report.

The lifecycle of an ``ImportJob``::

    contact_import_upload  -> uploaded (or mapped, when the header names every column we know)
    contact_import_map     -> mapped
    contact_import_start   -> queued (still "mapped", ``queued_at`` set); the task runs on commit
    contact_import_run     -> running -> completed | failed   (the Celery task's one call)
    contact_imports_purge  -> files deleted after CONTACT_IMPORT_KEEP_DAYS; counts stay

The worker streams the stored file through ``contacts.csv_io`` (never the whole file in memory):
``BATCH_SIZE`` rows at a time are read and validated (``contacts_bulk_prepare``; for a large file
in a forked child process, one batch ahead) and written (``contacts_bulk_apply``), and the counts
are saved after each batch,
so the progress screen moves. Rows the reader cannot read (``reader.problems``) and rows the
service rejects are written, in row order, to a JSON-lines file in storage; the result screen
shows the first few and the download turns all of them into a formula-safe CSV.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import json
import logging
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from carely.audit.context import Actor, acting_as
from carely.audit.services import audit_record
from carely.lib.forked import run_ahead
from carely.orgs.models import Organisation
from carely.orgs.suspension import OrganisationSuspended, suspension_check_write
from contacts.csv_io import (
    CsvError,
    CsvReader,
    Rejection,
    apply_mapping,
    check_mapping,
    open_csv,
    rejected_rows_csv,
)
from contacts.models import ImportJob, ImportState, SourceKind
from contacts.services import PreparedBatch, contacts_bulk_apply, contacts_bulk_prepare
from contacts.validation import ContactInvalid, contact_clean

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
PREVIEW_ROWS = 5
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_KEEP_DAYS = 7
# An upload nobody starts is deleted after a day: it is a list of patients nobody asked for.
UNSTARTED_KEEP = timedelta(days=1)
# A 20 MB file imports in minutes; a job still "running" after this lost its worker (a crash
# after the claim: the redelivered message finds the job claimed and does nothing).
STALLED_AFTER = timedelta(hours=6)
STALLED_MESSAGE = (
    "The import stopped because the background worker stopped; rows counted here were "
    "imported. Upload the file again: rows already imported come back as unchanged."
)

# The fields a column can go to, in the order the mapping screen lists them.
TARGET_FIELDS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "birth_date": "Date of birth",
    "gender": "Gender",
    "external_id": "External id / customer number",
    "email": "E-mail",
    "phone": "Phone",
    "preferred_language": "Preferred language",
    "address": "Address",
    "source": "Source (where collected)",
    "relationship_status": "Relationship status",
    "relationship_started_at": "Relationship started",
    "relationship_ended_at": "Relationship ended",
}

# Header names clinics use, Slovenian and English, compared without case, accents or punctuation.
_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("ime", "first name", "firstname", "given name", "name", "forename"),
    "last_name": ("priimek", "last name", "lastname", "surname", "family name"),
    "birth_date": (
        "datum rojstva",
        "rojstni datum",
        "rojen",
        "rojena",
        "birth date",
        "date of birth",
        "birthdate",
        "dob",
    ),
    "gender": ("spol", "gender", "sex"),
    "external_id": (
        "external id",
        "id",
        "sifra",
        "sifra pacienta",
        "sifra stranke",
        "stevilka kartoteke",
        "kartoteka",
        "customer number",
        "patient id",
        "zzzs",
    ),
    "email": ("e posta", "eposta", "email", "e mail", "mail", "elektronska posta"),
    "phone": (
        "telefon",
        "gsm",
        "mobitel",
        "mobilni telefon",
        "tel",
        "phone",
        "mobile",
        "telephone",
    ),
    "preferred_language": ("jezik", "preferred language", "language"),
    "address": ("naslov", "address", "ulica"),
    "source": ("vir", "source"),
    "relationship_status": ("status", "relationship status", "status razmerja"),
    "relationship_started_at": ("zacetek", "relationship started", "zacetek razmerja"),
    "relationship_ended_at": ("konec", "relationship ended", "konec razmerja"),
}
_ALIAS_INDEX = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}


class ContactImportError(ValueError):
    """A step of the import that cannot go ahead; the message says what to do."""


def import_max_bytes() -> int:
    return int(getattr(settings, "CONTACT_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def import_parallel_min_bytes() -> int:
    """Files at least this large are read and validated in a child process (ADR 0008)."""
    return int(settings.CONTACT_IMPORT_PARALLEL_MIN_BYTES)


def import_keep_days() -> int:
    return int(getattr(settings, "CONTACT_IMPORT_KEEP_DAYS", DEFAULT_KEEP_DAYS))


def _folder(organisation_id: int) -> str:
    return f"contact-imports/org-{organisation_id}"


# --- mapping ---------------------------------------------------------------------------------


def _normalise_header(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.split(r"[^a-z0-9]+", plain)).strip()


def mapping_suggest(header: Sequence[str]) -> dict[str, str]:
    """{column: field} from the header names; a field goes to the first column that names it."""
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for column in header:
        field_name = _ALIAS_INDEX.get(_normalise_header(column), "")
        if field_name in taken:
            field_name = ""
        if field_name:
            taken.add(field_name)
        mapping[column] = field_name
    return mapping


def mapping_check(header: Sequence[str], mapping: Mapping[str, str]) -> None:
    """Raise ``ContactImportError`` unless ``mapping`` is usable for a file with ``header``."""
    unknown = sorted({f for f in mapping.values() if f and f not in TARGET_FIELDS})
    if unknown:
        raise ContactImportError(f"Unknown field(s): {', '.join(unknown)}.")
    try:
        check_mapping(header, mapping)
    except CsvError as exc:
        raise ContactImportError(exc.message) from None
    if not any(mapping.values()):
        raise ContactImportError(
            "No column is mapped to a field, so nothing would be imported. Choose at least a "
            "name and an e-mail or phone column."
        )


# --- upload, map, preview, start --------------------------------------------------------------


def contact_import_upload(
    *, organisation: Organisation, user: Any, uploaded: IO[bytes], name: str = ""
) -> ImportJob:
    """Check the file can be read (size, encoding, separator, header) and store it.

    Raises ``CsvError`` with a message for the person when it cannot be imported at all.
    """
    suspension_check_write(organisation)
    reader = open_csv(uploaded, max_bytes=import_max_bytes())
    size = getattr(uploaded, "size", None)
    uploaded.seek(0)
    suggestion = mapping_suggest(reader.header)
    job = ImportJob(
        organisation=organisation,
        created_by=user if getattr(user, "pk", None) else None,
        encoding=reader.encoding,
        delimiter=reader.delimiter,
        header=reader.header,
        mapping=suggestion,
    )
    try:
        mapping_check(reader.header, suggestion)
        job.state = ImportState.MAPPED
    except ContactImportError:
        job.state = ImportState.UPLOADED
    stored = default_storage.save(f"{_folder(organisation.pk)}/{uuid.uuid4().hex}.csv", uploaded)
    job.upload.name = stored
    job.file_size = size if isinstance(size, int) else default_storage.size(stored)
    job.save()
    return job


def contact_import_map(*, job: ImportJob, mapping: Mapping[str, str]) -> ImportJob:
    if job.state not in (ImportState.UPLOADED, ImportState.MAPPED) or job.queued_at:
        raise ContactImportError("This import has already started; upload the file again.")
    suspension_check_write(job.organisation)
    mapping_check(job.header, mapping)
    job.mapping = {column: mapping.get(column, "") for column in job.header}
    job.state = ImportState.MAPPED
    job.save(update_fields=["mapping", "state"])
    return job


@dataclass
class PreviewRow:
    """One row of the mapping screen's preview: values as the register would store them."""

    row: int
    values: dict[str, Any]
    errors: dict[str, list[str]]


def contact_import_preview(*, job: ImportJob, n: int = PREVIEW_ROWS) -> list[PreviewRow]:
    """The first ``n`` rows through the job's mapping and the register's own validation.

    Only per-field rules are checked here; whether a row creates or updates a contact (and so
    whether a name and channel are required) is known only when the import matches it.
    """
    if not job.upload.name:
        return []
    region = job.organisation.default_phone_region
    out: list[PreviewRow] = []
    with default_storage.open(job.upload.name, "rb") as stream:
        reader = open_csv(stream, max_bytes=None)
        for row_number, row in itertools.islice(reader, n):
            data = apply_mapping(row, job.mapping)
            try:
                values, errors = contact_clean(data, region=region, require=False), {}
            except ContactInvalid as exc:
                values, errors = data, {k: list(v) for k, v in exc.errors.items()}
            out.append(PreviewRow(row_number, values, errors))
    return out


def contact_import_start(*, job: ImportJob) -> ImportJob:
    """Queue the import; the worker picks it up once this transaction commits."""
    from contacts.tasks import contact_import_run_task

    suspension_check_write(job.organisation)
    if job.state != ImportState.MAPPED:
        raise ContactImportError("Map the columns before starting the import.")
    with transaction.atomic():
        now = timezone.now()
        queued = ImportJob.objects.filter(
            pk=job.pk, state=ImportState.MAPPED, queued_at__isnull=True
        ).update(queued_at=now)
        if not queued:
            raise ContactImportError("This import has already been started.")
        job.queued_at = now
        audit_record(
            action="contacts.import_started",
            organisation=job.organisation,
            object_type="contact_import",
            object_id=job.pk,
            details={
                "file_size": job.file_size,
                "columns": sum(1 for f in job.mapping.values() if f),
            },
        )
        job_id = job.pk
        transaction.on_commit(lambda: contact_import_run_task.delay(job_id))
    return job


# --- the run (worker) ----------------------------------------------------------------------


class _CountingReader:
    """A byte stream that counts what was read: the progress bar's position in the file."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.count += len(chunk)
        return chunk


def contact_import_run(*, job_id: int) -> None:
    """Run a queued import to the end. Safe to call twice: only one call claims the job."""
    claimed = ImportJob.objects.filter(
        pk=job_id, state=ImportState.MAPPED, queued_at__isnull=False
    ).update(state=ImportState.RUNNING, started_at=timezone.now())
    if not claimed:
        logger.info("contact import %s: not queued or already claimed", job_id)
        return
    job = ImportJob.objects.select_related("organisation").get(pk=job_id)
    actor = Actor.user(job.created_by_id) if job.created_by_id else Actor.system("contact_import")
    with acting_as(actor):
        _run(job)


def _run(job: ImportJob) -> None:
    error = ""
    with tempfile.TemporaryFile() as spool:
        try:
            _stream_rows(job, spool)
        except (CsvError, OrganisationSuspended) as exc:
            error = f"The import stopped: {exc} Rows before that point were imported."
        except Exception:
            logger.exception("contact import %s failed", job.pk)
            error = (
                "The import stopped because of an error on our side; rows before that point "
                "were imported. Try again later or contact support."
            )
        if job.rejected and spool.tell():
            spool.seek(0)
            job.rejected_file.name = default_storage.save(
                f"{_folder(job.organisation_id)}/{uuid.uuid4().hex}-rejected.jsonl", File(spool)
            )
    _finish(job, error)


def _stream_rows(job: ImportJob, spool: IO[bytes]) -> None:
    if not job.upload.name:
        raise CsvError("the uploaded file has already been deleted; upload it again.")
    source = functools.partial(_open_upload, job.upload.name, job.header)
    options = {"organisation": job.organisation, "mapping": job.mapping}
    if job.file_size >= import_parallel_min_bytes():
        chunks = import_chunks_forked(source, **options)
    else:
        chunks = import_chunks(source, **options)
    for chunk in chunks:
        _import_batch(job, chunk, spool)


@contextlib.contextmanager
def _open_upload(name: str, header: list[str]) -> Iterator[tuple[CsvReader, _CountingReader]]:
    with default_storage.open(name, "rb") as raw:
        counting = _CountingReader(raw)
        reader = open_csv(counting, max_bytes=None)  # type: ignore[arg-type]  # size checked at upload
        if reader.header != header:
            raise CsvError("the stored file no longer has the columns that were mapped.")
        yield reader, counting


Source = Callable[[], contextlib.AbstractContextManager[tuple[CsvReader, _CountingReader]]]


@dataclass
class ImportChunk:
    """Up to ``BATCH_SIZE`` rows of the file, validated: each row's number and cells as read,
    the rows among them the reader could not read (as rejections), the prepared batch for
    ``contacts_bulk_apply``, and how far into the file the reader was."""

    rows: list[tuple[int, list[str]]]
    unreadable: list[Rejection]
    prepared: PreparedBatch
    bytes_read: int


def import_chunks(
    source: Source,
    *,
    organisation: Organisation,
    mapping: Mapping[str, str],
    today: date | None = None,
    seal: bool = False,
) -> Iterator[ImportChunk]:
    """The file from ``source()`` in validated chunks of ``BATCH_SIZE`` rows (no database
    access). A ``CsvError`` that ends the file early (an unclosed quote) is raised after the
    chunk of the rows read before it, so those rows are still imported."""
    today = today or timezone.localdate()
    with source() as (reader, counting):

        def chunk(rows: list[tuple[int, dict[str, str]]]) -> ImportChunk:
            unreadable = [problem.as_rejection() for problem in reader.problems]
            reader.problems.clear()
            prepared = contacts_bulk_prepare(
                organisation=organisation,
                rows=[apply_mapping(row, mapping) for _, row in rows],
                today=today,
                seal=seal,
            )
            cells = [(number, list(row.values())) for number, row in rows]
            return ImportChunk(cells, unreadable, prepared, counting.count)

        rows: list[tuple[int, dict[str, str]]] = []
        try:
            for item in reader:
                rows.append(item)
                if len(rows) >= BATCH_SIZE:
                    yield chunk(rows)
                    rows = []
        except CsvError:
            yield chunk(rows)
            raise
        yield chunk(rows)


def import_chunks_forked(
    source: Source,
    *,
    organisation: Organisation,
    mapping: Mapping[str, str],
    today: date | None = None,
) -> Iterator[ImportChunk]:
    """``import_chunks`` run in a forked child process, one chunk ahead of the caller.

    Why a process: reading, validating, hashing and encrypting a row is pure Python and about
    as much work as writing it, and threads would share one interpreter lock (measured slower
    than no overlap at all). The child never touches the database (its inherited connections
    are left alone and it leaves with ``os._exit``); it sends each chunk down a pipe, whose
    back-pressure keeps it at most one chunk ahead, so memory stays flat. Errors come back as
    the same exceptions: a ``CsvError`` after the chunks before it, anything else as a
    ``RuntimeError`` carrying the child's traceback (``carely.lib.forked``). See ADR 0008.
    """
    today = today or timezone.localdate()
    return run_ahead(
        lambda: import_chunks(
            source, organisation=organisation, mapping=mapping, today=today, seal=True
        ),
        name="contact-import-reader",
        what="the import's reading process",
        expected=(CsvError,),
    )


def _import_batch(job: ImportJob, chunk: ImportChunk, spool: IO[bytes]) -> None:
    results = (
        contacts_bulk_apply(
            organisation=job.organisation, prepared=chunk.prepared, source_kind=SourceKind.IMPORT
        )
        if chunk.rows
        else []
    )
    rejected = [
        Rejection(row=number, cells=cells, errors=result.errors)
        for (number, cells), result in zip(chunk.rows, results, strict=True)
        if result.status == "rejected"
    ]
    unreadable = chunk.unreadable
    for rejection in heapq.merge(rejected, unreadable, key=lambda r: r.row):
        line = {"row": rejection.row, "cells": list(rejection.cells), "errors": rejection.errors}
        spool.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
    for result in results:
        if result.status in ("created", "updated", "unchanged"):
            setattr(job, result.status, getattr(job, result.status) + 1)
    job.rejected += len(rejected) + len(unreadable)
    job.total += len(chunk.rows) + len(unreadable)
    job.bytes_read = chunk.bytes_read
    job.save(update_fields=["created", "updated", "unchanged", "rejected", "total", "bytes_read"])


def _finish(job: ImportJob, error: str) -> None:
    upload = job.upload.name
    job.state = ImportState.FAILED if error else ImportState.COMPLETED
    job.error = error
    job.finished_at = timezone.now()
    if not error:
        job.bytes_read = job.file_size
    job.upload.name = ""
    with transaction.atomic():
        job.save(
            update_fields=["state", "error", "finished_at", "bytes_read", "upload", "rejected_file"]
        )
        audit_record(
            action="contacts.import_completed" if not error else "contacts.import_failed",
            organisation=job.organisation,
            object_type="contact_import",
            object_id=job.pk,
            details={
                "total": job.total,
                "created": job.created,
                "updated": job.updated,
                "unchanged": job.unchanged,
                "rejected": job.rejected,
            },
        )
    if upload:
        # The uploaded list is no longer needed once the rows are in the register.
        default_storage.delete(upload)


# --- results -------------------------------------------------------------------------------


def import_rejections(*, job: ImportJob) -> Iterator[Rejection]:
    """Every rejected row of a finished import, in row order, streamed from storage."""
    if not job.rejected_file.name:
        return
    with default_storage.open(job.rejected_file.name, "rb") as stream:
        for line in stream:
            item = json.loads(line)
            yield Rejection(row=item["row"], cells=item["cells"], errors=item["errors"])


def import_rejections_first(*, job: ImportJob, n: int = 50) -> list[Rejection]:
    return list(itertools.islice(import_rejections(job=job), n))


def import_rejected_csv(*, job: ImportJob) -> Iterator[str]:
    """The download: row, errors, then the original cells; every cell formula-safe."""
    return rejected_rows_csv(
        import_rejections(job=job), header=job.header, delimiter=job.delimiter or ","
    )


# --- retention -----------------------------------------------------------------------------


def contact_imports_purge(*, now: Any = None, dry_run: bool = False) -> int:
    """Delete the files of finished imports after the keep period and unstarted uploads after a
    day; the job rows keep their counts. Returns how many jobs had files deleted."""
    now = now or timezone.now()
    if not dry_run:
        _fail_stalled(now)
    finished = ImportJob.objects.filter(
        finished_at__lt=now - timedelta(days=import_keep_days()), files_purged_at__isnull=True
    )
    abandoned = ImportJob.objects.filter(
        queued_at__isnull=True, created_at__lt=now - UNSTARTED_KEEP, files_purged_at__isnull=True
    )
    count = 0
    for job in itertools.chain(finished.iterator(), abandoned.iterator()):
        count += 1
        if dry_run:
            continue
        for name in (job.upload.name, job.rejected_file.name):
            if name:
                default_storage.delete(name)
        ImportJob.objects.filter(pk=job.pk).update(upload="", rejected_file="", files_purged_at=now)
    return count


def _fail_stalled(now: Any) -> None:
    stalled = ImportJob.objects.filter(
        state=ImportState.RUNNING, started_at__lt=now - STALLED_AFTER
    ).select_related("organisation")
    for job in stalled:
        # Claimed by a conditional update, so two purges never finish one job twice.
        claimed = ImportJob.objects.filter(pk=job.pk, state=ImportState.RUNNING).update(
            state=ImportState.FAILED
        )
        if claimed:
            with acting_as(Actor.system("contact_imports_purge")):
                _finish(job, STALLED_MESSAGE)
