"""Forms for the contact pages. They only carry what was typed: the rules of a valid contact live
in ``contacts.validation`` and their messages are shown per field exactly as the service gives
them, so the UI, the API and imports explain a problem in the same words."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from carely.audit.models import AccessPurpose
from contacts.models import Gender, RelationshipStatus
from contacts.services import tag_names_parse

# Labels of the contact's fields, for the forms, the detail page and the history.
FIELD_LABELS: dict[str, Any] = {
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "birth_date": _("Birth date"),
    "gender": _("Gender"),
    "external_id": _("Customer number"),
    "email": _("E-mail"),
    "phone": _("Phone"),
    "preferred_language": _("Preferred language"),
    "address": _("Address"),
    "source": _("Where and how the data was collected"),
    "relationship_status": _("Relationship"),
    "relationship_started_at": _("Relationship started"),
    "relationship_ended_at": _("Relationship ended"),
    "guardian": _("Parent or guardian"),
    "tags": _("Tags"),
}

# A purpose for an export is a reason a person gives; "routine" and "API" describe lists and
# integrations, not someone taking a copy of a record.
EXPORT_PURPOSES = [
    (value, label)
    for value, label in AccessPurpose.choices
    if value not in (AccessPurpose.ROUTINE, AccessPurpose.API)
]
# CNT-4: the only purposes for which a restricted contact may leave the system.
RESTRICTED_EXPORT_PURPOSES = (AccessPurpose.DATA_SUBJECT_REQUEST, AccessPurpose.LEGAL)


def _text(name: str, **attrs: str) -> forms.CharField:
    return forms.CharField(
        label=FIELD_LABELS[name],
        required=False,
        widget=forms.TextInput(attrs=attrs) if attrs else forms.TextInput,
    )


def _date(name: str) -> forms.CharField:
    # A CharField, not a DateField: the service reads dates (also 21.3.1984) and words the error.
    return forms.CharField(
        label=FIELD_LABELS[name], required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class _Form(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_errors(self, errors: dict[str, list[str]]) -> None:
        """Errors from the service, each under its field (or the form when it has none)."""
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


class ContactForm(_Form):
    first_name = _text("first_name", autocomplete="off")
    last_name = _text("last_name", autocomplete="off")
    birth_date = _date("birth_date")
    gender = forms.ChoiceField(
        label=FIELD_LABELS["gender"],
        required=False,
        choices=[("", _("Not given")), *Gender.choices],
    )
    email = forms.CharField(
        label=FIELD_LABELS["email"],
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    phone = forms.CharField(
        label=FIELD_LABELS["phone"],
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
        help_text=_("Any common form, for example 041 123 456 or +386 41 123 456."),
    )
    preferred_language = _text("preferred_language")
    external_id = _text("external_id")
    address = forms.CharField(
        label=FIELD_LABELS["address"], required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    relationship_status = forms.ChoiceField(
        label=FIELD_LABELS["relationship_status"],
        required=False,
        choices=RelationshipStatus.choices,
    )
    relationship_started_at = _date("relationship_started_at")
    relationship_ended_at = _date("relationship_ended_at")
    source = _text("source")
    guardian = forms.CharField(
        label=FIELD_LABELS["guardian"],
        required=False,
        help_text=_("For a minor: the number of the parent's or guardian's contact (#123)."),
    )

    # Checked by the service (contacts.services.tag_names_clean), which names each bad tag.
    tags = forms.CharField(
        label=FIELD_LABELS["tags"],
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=_(
            "Separated by commas, for example: diabetes-check, newsletter. "
            "A new name becomes a new tag."
        ),
    )

    def clean_guardian(self) -> Any:
        value = (self.cleaned_data.get("guardian") or "").strip().lstrip("#")
        if not value:
            return None
        if not value.isdigit():
            raise forms.ValidationError(
                _("Give the guardian's contact number, for example 123."), code="invalid"
            )
        return int(value)

    def contact_data(self) -> dict[str, Any]:
        """The contact's fields; the tags are in ``tag_names()``."""
        data = dict(self.cleaned_data)
        data.pop("tags", None)
        return data

    def tag_names(self) -> list[str]:
        return tag_names_parse(self.cleaned_data.get("tags") or "")

    # Field groups for the template, in the order a receptionist fills them in.
    groups = (
        (_("Person"), ("first_name", "last_name", "birth_date", "gender")),
        (_("How to reach them"), ("email", "phone", "preferred_language", "address")),
        (
            _("Relationship with the clinic"),
            ("external_id", "relationship_status", "relationship_started_at"),
        ),
        (_("More"), ("relationship_ended_at", "guardian", "source", "tags")),
    )

    def grouped(self) -> list[tuple[Any, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in self.groups]


class ContactEditForm(ContactForm):
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=500,
        widget=forms.TextInput,
        help_text=_("Kept in the contact's history, for example “the patient gave a new phone”."),
        error_messages={"required": _("Say why the record is changed; it is kept in its history.")},
    )


class RestrictForm(_Form):
    reason = forms.CharField(
        label=_("Why is the contact restricted?"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For example the number of the data-subject request, or the disputed data."),
        error_messages={"required": _("Say why the contact is restricted.")},
    )


class LiftRestrictionForm(_Form):
    # A date picker and a plain "10:30" box: both styled by carely.css, unlike datetime-local.
    informed_at = forms.SplitDateTimeField(
        label=_("When was the person informed?"),
        widget=forms.SplitDateTimeWidget(
            date_attrs={"type": "date"},
            time_attrs={"inputmode": "numeric", "placeholder": "10:30", "size": "5"},
            time_format="%H:%M",
        ),
        help_text=_("The date, and the time as hours and minutes (for example 10:30)."),
        error_messages={
            "required": _("Say when the person was told the restriction is lifted."),
            "incomplete": _("Give both the date and the time, for example 10:30."),
            "invalid_date": _("Give a date, for example 2025-03-21."),
            "invalid_time": _("Give a time as hours and minutes, for example 10:30."),
        },
    )
    informed_how = forms.CharField(
        label=_("How was the person informed?"),
        max_length=200,
        help_text=_("For example: by letter, by e-mail, by phone, in person."),
        error_messages={"required": _("Say how the person was told.")},
    )


class StatementForm(_Form):
    statement = forms.CharField(
        label=_("Supplementary statement"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,  # the service words the error
        help_text=_(
            "Completes the record without changing it (for example, the person's own "
            "account of a disputed detail)."
        ),
    )


class ExportPurposeForm(_Form):
    purpose = forms.ChoiceField(
        label=_("Why are you exporting this record?"),
        choices=EXPORT_PURPOSES,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose the purpose of the export.")},
    )


class ContactSearchForm(_Form):
    q = forms.CharField(
        label=_("E-mail, phone or customer number"),
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    relationship_status = forms.ChoiceField(
        label=_("Relationship"),
        required=False,
        choices=[("", _("Any")), *RelationshipStatus.choices],
    )
    tag = forms.CharField(
        label=_("Tag"),
        required=False,
        max_length=80,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
