from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from carely.audit.models import ActorType


class AccessLogFilterForm(forms.Form):
    subject_type = forms.CharField(label=_("Subject type"), required=False, max_length=40)
    subject_id = forms.CharField(label=_("Subject id"), required=False, max_length=64)
    actor_type = forms.ChoiceField(
        label=_("Actor"),
        required=False,
        choices=[("", _("Anyone")), *ActorType.choices],
    )
    actor_id = forms.CharField(label=_("Actor id"), required=False, max_length=64)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return data
