"""SMS encoding and part counts shown in the preview (MSG-3, TEN-5)."""

from __future__ import annotations

import pytest

from messaging.segments import sms_encoding, transliterate

pytestmark = pytest.mark.obligation("MSG-3")


@pytest.mark.parametrize(
    ("text", "encoding", "parts", "length"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 306, "GSM-7", 2, 306),
        ("a" * 307, "GSM-7", 3, 307),
        ("€" * 80, "GSM-7", 1, 160),  # extension characters take two septets
        ("€" * 81, "GSM-7", 2, 162),
        ("č" + "a" * 69, "UCS-2", 1, 70),
        ("č" + "a" * 70, "UCS-2", 2, 71),
        ("č" + "a" * 133, "UCS-2", 2, 134),
        ("č" + "a" * 134, "UCS-2", 3, 135),
        ("😀" * 35, "UCS-2", 1, 70),  # a surrogate pair is two UTF-16 units
    ],
)
def test_encoding_parts_and_length(text, encoding, parts, length):
    found = sms_encoding(text)
    assert (found.encoding, found.parts, found.length) == (encoding, parts, length)


def test_a_two_septet_character_is_never_split_across_parts():
    # 306 septets would fill two parts of 153 exactly, but the "€" cannot straddle the end of
    # the first part: it starts the second, which then overflows into a third.
    found = sms_encoding("a" * 152 + "€" + "a" * 152)
    assert (found.length, found.parts) == (306, 3)
    assert sms_encoding("a" * 151 + "€" + "a" * 153).parts == 2  # fits exactly


def test_one_slovenian_letter_doubles_the_cost_of_a_reminder():
    text = (
        "Spoštovani, vaš termin je jutri ob 9:00 v ambulanti Zdravje. Odgovorite DA za potrditev."
    )
    plain = transliterate(text)
    assert sms_encoding(text).encoding == "UCS-2" and sms_encoding(text).non_gsm == ("š",)
    assert sms_encoding(plain).encoding == "GSM-7"
    assert "Spostovani, vas termin" in plain


def test_transliteration_covers_the_regional_letters_and_keeps_gsm_accents():
    assert transliterate("ČŠŽčšžĆćĐđ é è à") == "CSZcszCcDd é è à"
    assert sms_encoding("Café à Paris").encoding == "GSM-7"


def test_over_25_parts_is_flagged_as_too_long():
    assert sms_encoding("a" * (153 * 25)).too_long is False
    assert sms_encoding("a" * (153 * 25 + 1)).too_long is True
