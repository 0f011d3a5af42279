"""What a valid contact is (CNT-1, CNT-6), as plain functions: cheap enough to run per row of an
import of 100,000, and the same rules for the API, the UI and imports.

``contact_clean`` returns the cleaned values or raises ``ContactInvalid`` whose ``errors`` map each
bad field to messages a receptionist can act on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from carely.lib.normalise import InvalidPhoneNumber, normalise_email, normalise_phone
from contacts.models import Gender, RelationshipStatus

MINIMUM_AGE = 13  # CNT-6: younger contacts are refused
ADULT_AGE = 18  # 13 to 17: accepted, flagged as a minor

TEXT_LIMITS: dict[str, int] = {
    "first_name": 100,
    "last_name": 100,
    "external_id": 100,
    "email": 254,
    "phone": 40,
    "preferred_language": 8,
    "address": 1000,
    "source": 200,
}
DATE_FIELDS = ("birth_date", "relationship_started_at", "relationship_ended_at")
CHOICE_FIELDS: dict[str, Any] = {"gender": Gender, "relationship_status": RelationshipStatus}
# ``TextChoices.values`` builds a new list on every access; these are read once per row.
_CHOICE_VALUES: dict[str, frozenset[str]] = {
    name: frozenset(choices.values) for name, choices in CHOICE_FIELDS.items()
}
FIELDS: tuple[str, ...] = (*TEXT_LIMITS, *DATE_FIELDS, *CHOICE_FIELDS)
NAME_FIELDS = ("first_name", "last_name")
CHANNEL_FIELDS = ("email", "phone")

# What "%d.%m.%Y" reads, in ASCII digits only: 1-2 digit day and month, 4-digit year.
_DMY = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,4})?$")

Errors = dict[str, list[str]]


class ContactInvalid(ValueError):
    """One or more fields are invalid; ``errors`` maps each field to its messages."""

    def __init__(self, errors: Errors) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(errors.items())))


def age_on(birth_date: dt.date, today: dt.date) -> int:
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def is_minor(birth_date: dt.date | None, today: dt.date | None = None) -> bool:
    if birth_date is None:
        return False
    age = age_on(birth_date, today or timezone.localdate())
    return MINIMUM_AGE <= age < ADULT_AGE


def _date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    plain = _DMY.fullmatch(text)
    if plain is not None:  # "21.3.1984" without strptime (~10x faster); anything odd falls through
        try:
            return dt.date(int(plain[3]), int(plain[2]), int(plain[1]))
        except ValueError:
            pass
    for fmt in ("%d.%m.%Y", "%d. %m. %Y"):  # how Slovenian clinics write dates
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"“{text}” is not a date. Write it as YYYY-MM-DD, for example 1984-03-21.")


def contact_clean(
    data: Mapping[str, Any],
    *,
    region: str,
    current: Mapping[str, Any] | None = None,
    require: bool = True,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Clean the fields present in ``data``; unknown keys are ignored.

    ``current`` is the contact's present state for an update (the required-field rules apply to
    the merged result); ``None`` means a new contact, which needs a name and a channel.
    ``require=False`` leaves the required-field rules to the caller (``contact_required_errors``),
    for imports that only learn after matching whether a row is new.
    """
    errors: Errors = {}
    out: dict[str, Any] = {}
    for name, limit in TEXT_LIMITS.items():
        if name not in data:
            continue
        value = data[name]
        text = "" if value is None else str(value).strip()
        if len(text) > limit:
            errors[name] = [f"Too long: at most {limit} characters, this has {len(text)}."]
            continue
        out[name] = text
    if out.get("email"):
        out["email"] = normalise_email(out["email"])  # stored as matched: "A@B.si" is "a@b.si"
        try:
            validate_email(out["email"])
        except ValidationError:
            errors["email"] = [f"“{out['email']}” is not an e-mail address (name@example.com)."]
    if out.get("phone"):
        try:
            out["phone"] = normalise_phone(out["phone"], region)
        except InvalidPhoneNumber as exc:
            errors["phone"] = [str(exc)]
    if out.get("preferred_language"):
        language = out["preferred_language"]
        if not _LANGUAGE.match(language):
            errors["preferred_language"] = [
                f"“{language}” is not a language code; use one such as sl, en or de."
            ]
    for name, choices in CHOICE_FIELDS.items():
        if name not in data:
            continue
        value = "" if data[name] is None else str(data[name]).strip().lower()
        if name == "relationship_status" and value == "":
            value = RelationshipStatus.NONE
        if value and value not in _CHOICE_VALUES[name]:
            errors[name] = [f"“{value}” is not one of: {', '.join(choices.values)}."]
            continue
        out[name] = value
    for name in DATE_FIELDS:
        if name not in data:
            continue
        try:
            out[name] = _date(data[name])
        except ValueError as exc:
            errors[name] = [str(exc)]
    today = today or timezone.localdate()
    birth_date = out.get("birth_date")
    if birth_date is not None and "birth_date" not in errors:
        if birth_date > today:
            errors["birth_date"] = ["The birth date is in the future."]
        elif age_on(birth_date, today) < MINIMUM_AGE:
            errors["birth_date"] = [
                "Contacts under 13 cannot be registered. Register the parent or guardian instead."
            ]
    merged = {**(current or {}), **out}
    started, ended = merged.get("relationship_started_at"), merged.get("relationship_ended_at")
    if started and ended and ended < started and "relationship_ended_at" not in errors:
        errors["relationship_ended_at"] = ["The relationship cannot end before it started."]
    if require:
        invalid = set(errors)  # a group with a bad value already has its error
        for name, messages in contact_required_errors(merged).items():
            if not invalid & set(_GROUP[name]):
                errors.setdefault(name, messages)
    if errors:
        raise ContactInvalid(errors)
    return out


_GROUP = {n: NAME_FIELDS for n in NAME_FIELDS} | {n: CHANNEL_FIELDS for n in CHANNEL_FIELDS}


def contact_required_errors(values: Mapping[str, Any]) -> Errors:
    """CNT-1: a contact needs a first or last name and an e-mail address or phone number."""
    errors: Errors = {}
    if not any(values.get(n) for n in NAME_FIELDS):
        for name in NAME_FIELDS:
            errors[name] = ["Give a first or a last name."]
    if not any(values.get(n) for n in CHANNEL_FIELDS):
        for name in CHANNEL_FIELDS:
            errors[name] = ["Give an e-mail address or a phone number."]
    return errors


def contact_state(contact: Any) -> dict[str, Any]:
    """The contact's current values of the validated fields."""
    return {name: getattr(contact, name) for name in FIELDS}
