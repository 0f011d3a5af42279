"""How an SMS text is encoded and how many parts it costs (MSG-3, TEN-5).

Operators bill per part, so the clinic sees this before sending. GSM 03.38's default alphabet
takes 7 bits a character: 160 in one part, 153 per part once split (the rest carries the
concatenation header). The extension table (``^ { } \\ [ ] ~ | €`` and form feed) costs two
septets each, and a two-septet character is never split across parts. One character outside
both tables (``č``, ``š``, ``ž``, an emoji) makes the whole message UCS-2: 70 UTF-16 code units
in one part, 67 per part once split, a surrogate pair never split either. Slovenian letters are
the usual reason a reminder costs two parts instead of one, hence the transliteration an
organisation can switch on. The provider's own count (``details.messageCount``) is what is
metered afterwards; this is the promise made in the preview.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[]~|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
MAX_PARTS = 25  # Infobip rejects longer messages (REJECTED_MESSAGE_TOO_LONG)

# The letters of Slovenian (and neighbouring) names that are not GSM-7, with the plain letter an
# SMS reader expects instead.
_TRANSLITERATION = str.maketrans(
    {
        "č": "c",
        "Č": "C",
        "š": "s",
        "Š": "S",
        "ž": "z",
        "Ž": "Z",
        "ć": "c",
        "Ć": "C",
        "đ": "d",
        "Đ": "D",
    }
)


@dataclass(frozen=True)
class SmsEncoding:
    encoding: str  # "GSM-7" or "UCS-2"
    parts: int
    length: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    per_part: int  # capacity of each part at this length
    # The characters that forced UCS-2, in order of appearance, without repeats.
    non_gsm: tuple[str, ...] = ()

    @property
    def too_long(self) -> bool:
        return self.parts > MAX_PARTS


def transliterate(text: str) -> str:
    """č, š, ž, ć, đ (and capitals) as c, s, z, c, d: keeps a Slovenian text in GSM-7."""
    return text.translate(_TRANSLITERATION)


def sms_encoding(text: str) -> SmsEncoding:
    non_gsm = tuple(
        dict.fromkeys(ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION)
    )
    if non_gsm:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        return _count("UCS-2", units, UCS2_SINGLE, UCS2_PART, non_gsm)
    septets = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return _count("GSM-7", septets, GSM7_SINGLE, GSM7_PART, ())


def _count(
    encoding: str, widths: list[int], single: int, per_part: int, non_gsm: tuple[str, ...]
) -> SmsEncoding:
    length = sum(widths)
    if length <= single:
        return SmsEncoding(encoding, 1 if length else 0, length, single, non_gsm)
    # Fill parts one character at a time: a character that does not fit whole starts the next.
    parts, used = 1, 0
    for width in widths:
        if used + width > per_part:
            parts, used = parts + 1, 0
        used += width
    return SmsEncoding(encoding, parts, length, per_part, non_gsm)
