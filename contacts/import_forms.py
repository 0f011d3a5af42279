"""Forms of the CSV import screens: the upload and the column mapping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from contacts.imports import TARGET_FIELDS, ContactImportError, mapping_check


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Exported from Excel, LibreOffice or your practice system: UTF-8 or Windows-1250, "
            "separated by ';' or ','. The first row names the columns."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv"}),
    )


IGNORE = ""
FIELD_CHOICES = [(IGNORE, _("— do not import —")), *TARGET_FIELDS.items()]


class ImportMappingForm(forms.Form):
    """One select per file column (``column_0``, ``column_1``, ...), labelled with its name."""

    def __init__(
        self, *args: Any, header: Sequence[str], initial_mapping: Mapping[str, str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header = list(header)
        for index, column in enumerate(self.header):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=column,
                choices=FIELD_CHOICES,
                required=False,
                initial=initial_mapping.get(column, IGNORE),
            )

    def mapping(self) -> dict[str, str]:
        return {
            column: self.cleaned_data.get(f"column_{index}") or IGNORE
            for index, column in enumerate(self.header)
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                mapping_check(self.header, self.mapping())
            except ContactImportError as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned

    def column_fields(self) -> list[tuple[str, forms.BoundField]]:
        return [(column, self[f"column_{i}"]) for i, column in enumerate(self.header)]
