"""Normal forms of the values people look things up by (e-mail, phone, external id).

Blind indexes and the suppression list hash the normal form, so "A@B.si" finds "a@b.si" and
"041 123 456" (in Slovenia) finds "+38641123456".
"""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    """The text is not a phone number we can dial; the message says what to change."""


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str, region: str | None = None) -> str:
    """E.164 (``+38641123456``). ``region`` (ISO 3166 alpha-2, e.g. "SI") reads national forms
    such as "041 123 456"; without it the number must start with + and the country code."""
    text = value.strip()
    if not text:
        raise InvalidPhoneNumber("The phone number is empty.")
    if region is None and not text.startswith(("+", "00")):
        raise InvalidPhoneNumber(
            f"“{text}” has no country code. Write it with one, for example +386 41 123 456."
        )
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(
            f"“{text}” is not a phone number. Use digits, spaces and an optional leading +, "
            "for example +386 41 123 456."
        ) from None
    if not phonenumbers.is_valid_number(number):
        where = f" for {region.upper()}" if region and not text.startswith("+") else ""
        raise InvalidPhoneNumber(
            f"“{text}” is not a valid phone number{where}. Check the digits, or write it with "
            "the country code, for example +386 41 123 456."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_external_id(value: str) -> str:
    return value.strip()
