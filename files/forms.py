from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from carely.audit.models import AccessPurpose
from files.models import FileKind

# A person downloading chooses why; "routine" and "api" are for lists and integrations.
DOWNLOAD_PURPOSES = [
    (value, label)
    for value, label in AccessPurpose.choices
    if value not in (AccessPurpose.ROUTINE, AccessPurpose.API)
]


class DownloadPurposeForm(forms.Form):
    purpose = forms.ChoiceField(
        label=_("Why do you need this file?"),
        choices=DOWNLOAD_PURPOSES,
        error_messages={"required": _("Choose why you are downloading this file.")},
    )


class ContactFileUploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=FileKind.choices)
    file = forms.FileField(label=_("File"))
