"""What a file *is*, from its first bytes (CNT-5): the allow-list is checked against this, never
against the name or the type the browser claimed.

Each allowed type has a signature a renamed program cannot carry: an ``.exe`` renamed to ``.pdf``
still starts with ``MZ`` and is refused. Only the first ``HEAD_BYTES`` are read, except for DOCX,
whose ZIP central directory (at the end) must list ``word/document.xml``.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import IO

HEAD_BYTES = 8192


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    label: str  # for messages: "a PDF document"


PDF = Sniffed("application/pdf", "a PDF document")
PNG = Sniffed("image/png", "a PNG image")
JPEG = Sniffed("image/jpeg", "a JPEG image")
TEXT = Sniffed("text/plain", "plain text")
DOCX = Sniffed(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "a Word document (DOCX)",
)
MP3 = Sniffed("audio/mpeg", "an MP3 recording")
M4A = Sniffed("audio/mp4", "an M4A recording")
WAV = Sniffed("audio/wav", "a WAV recording")
OGG = Sniffed("audio/ogg", "an OGG recording")

# Recognised only to say clearly what was refused.
_KNOWN_REFUSED: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"#!", "a script"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (DOC/XLS); save it as PDF or DOCX"),
)

# Markup passes as text but a browser may run it; refused outright.
_MARKUP = (b"<!doctype", b"<html", b"<svg", b"<?xml", b"<script")

_M4A_BRANDS = {b"M4A ", b"M4B ", b"mp42", b"isom", b"mp41", b"3gp4", b"3gp5"}


def _is_mp3(head: bytes) -> bool:
    if head.startswith(b"ID3"):
        return True
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0 and bitrate not in (0, 0xF) and rate != 0b11


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may cut a multi-byte character in two; only its last few bytes may fail.
        if exc.start < len(head) - 3:
            return False
    controls = sum(1 for b in head if b < 0x20 and b not in (0x09, 0x0A, 0x0C, 0x0D))
    return controls == 0


def _is_docx(stream: IO[bytes]) -> bool:
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "[Content_Types].xml" in names and "word/document.xml" in names


def sniff(stream: IO[bytes]) -> Sniffed | str:
    """The allowed type of the content, or a description of what it is instead (for the error).

    ``stream`` must be seekable; it is left at the start.
    """
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    try:
        return _sniff(head, stream)
    finally:
        stream.seek(0)


def _sniff(head: bytes, stream: IO[bytes]) -> Sniffed | str:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"OggS"):
        return OGG
    if head[4:8] == b"ftyp" and head[8:12] in _M4A_BRANDS:
        return M4A
    if _is_mp3(head):
        return MP3
    if head.startswith(b"PK\x03\x04") and _is_docx(stream):
        return DOCX
    for magic, label in _KNOWN_REFUSED:
        if head.startswith(magic):
            return label
    if head.lstrip().lower().startswith(_MARKUP):
        return "a web page or XML document"
    if _is_text(head):
        return TEXT
    return "of a type that cannot be recognised" if head else "empty"
