"""Writes over contact files (CNT-5).

``contact_file_add`` checks, in this order, that the organisation may write (TEN-3), that the
contact is not restricted (CNT-4), the size against ``CONTACT_FILE_MAX_BYTES`` and the type by
content against the kind's allow-list; then it stores the object under a random key, creates the
row and an audit event (ids only) in one transaction. The object is written before the
transaction, so a failed insert deletes it again rather than leaving an orphan.
"""

from __future__ import annotations

import hashlib
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction

from carely.audit.services import audit_record
from carely.orgs.models import User
from carely.orgs.suspension import suspension_check_write
from contacts.models import Contact
from files import sniff as sniffing
from files.models import ContactFile, FileKind

__all__ = [
    "ALLOWED",
    "DEFAULT_MAX_BYTES",
    "ContactFileRefused",
    "ContactRestrictedForFiles",
    "FileTooLarge",
    "FileTypeRefused",
    "contact_file_add",
    "contact_file_delete",
    "max_bytes",
]

DEFAULT_MAX_BYTES = 25 * 1024 * 1024

ALLOWED: dict[str, tuple[sniffing.Sniffed, ...]] = {
    FileKind.RECORDING: (sniffing.MP3, sniffing.M4A, sniffing.WAV, sniffing.OGG),
    FileKind.DOCUMENT: (
        sniffing.PDF,
        sniffing.PNG,
        sniffing.JPEG,
        sniffing.TEXT,
        sniffing.DOCX,
    ),
}
_ALLOWED_NAMES: dict[str, str] = {
    FileKind.RECORDING: "MP3, M4A, WAV or OGG audio",
    FileKind.DOCUMENT: "PDF, PNG, JPEG, plain text or Word (DOCX)",
}


class ContactFileRefused(ValueError):
    """The file cannot be attached; ``str(exc)`` says why and what to do. ``field`` names the
    form or API field at fault."""

    field = "file"


class FileTooLarge(ContactFileRefused):
    pass


class FileTypeRefused(ContactFileRefused):
    pass


class ContactRestrictedForFiles(ContactFileRefused):
    field = "contact"


def max_bytes() -> int:
    return int(getattr(settings, "CONTACT_FILE_MAX_BYTES", DEFAULT_MAX_BYTES))


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def _check_size(size: int) -> None:
    limit = max_bytes()
    if size > limit:
        raise FileTooLarge(
            f"The file is {_megabytes(size)}; files may be at most {_megabytes(limit)} "
            f"({limit:,} bytes). Compress or split it and upload again."
        )
    if size == 0:
        raise FileTypeRefused("The file is empty; choose the file again.")


def _check_type(stream: IO[bytes], kind: str) -> sniffing.Sniffed:
    found = sniffing.sniff(stream)
    allowed = ALLOWED[kind]
    if isinstance(found, sniffing.Sniffed) and found in allowed:
        return found
    what = found.label if isinstance(found, sniffing.Sniffed) else found
    raise FileTypeRefused(
        f"By its content this file is {what}, whatever its name says; a {kind} must be "
        f"{_ALLOWED_NAMES[kind]}."
    )


def _sha256(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def _check_contact(contact: Contact) -> None:
    if contact.is_restricted:
        raise ContactRestrictedForFiles(
            f"Contact #{contact.pk} is restricted (CNT-4): its record is only stored, so no file "
            "can be added or removed. Lift the restriction first, after informing the person."
        )


def _original_name(upload: Any) -> str:
    name = str(getattr(upload, "name", "") or "unnamed")
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "unnamed"
    return name[:255]


def contact_file_add(
    *, contact: Contact, upload: Any, kind: str, uploaded_by: User | None
) -> ContactFile:
    """Attach ``upload`` (a Django ``UploadedFile`` or any named binary file object) to
    ``contact``. Raises a ``ContactFileRefused`` subclass with a message for the person, or
    ``OrganisationSuspended``."""
    organisation = contact.organisation
    suspension_check_write(organisation)
    _check_contact(contact)
    if kind not in ALLOWED:
        raise FileTypeRefused(f"Unknown kind {kind!r}; choose recording or document.")
    stream: IO[bytes] = upload.file if hasattr(upload, "file") else upload
    size = getattr(upload, "size", None)
    if size is not None:
        _check_size(int(size))  # before reading a byte of an oversized upload
    digest, size = _sha256(stream)
    _check_size(size)
    sniffed = _check_type(stream, kind)

    row = ContactFile(
        organisation=organisation,
        contact=contact,
        kind=kind,
        original_name=_original_name(upload),
        content_type=sniffed.content_type,
        size=size,
        sha256=digest,
        uploaded_by=uploaded_by,
    )
    content = File(stream)
    content.content_type = sniffed.content_type  # type: ignore[attr-defined]  # S3 ContentType
    row.stored_file.save("upload", content, save=False)
    try:
        with transaction.atomic():
            row.save()
            audit_record(
                action="contact_file.added",
                organisation=organisation,
                object_type="contact_file",
                object_id=row.pk,
                details={
                    "contact_id": contact.pk,
                    "kind": kind,
                    "content_type": sniffed.content_type,
                    "size": size,
                },
            )
    except BaseException:
        row.stored_file.storage.delete(str(row.stored_file.name))
        raise
    return row


def contact_file_delete(*, contact_file: ContactFile) -> None:
    """Remove one file: the row and its audit event now, the stored object after the commit."""
    suspension_check_write(contact_file.organisation)
    _check_contact(contact_file.contact)
    with transaction.atomic():
        file_id = contact_file.pk
        audit_record(
            action="contact_file.deleted",
            organisation=contact_file.organisation,
            object_type="contact_file",
            object_id=file_id,
            details={"contact_id": contact_file.contact_id},
        )
        contact_file.delete()
