from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from carely.api.scopes import ALL_SCOPES
from carely.api.services import MAX_RATE_PER_MINUTE


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Which system will use the key, e.g. “Practice management system”."),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=[(s, s) for s in ALL_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Give the key only what the system needs."),
    )
    rate_limit_per_minute = forms.IntegerField(
        label=_("Rate limit (requests per minute)"),
        required=False,
        min_value=1,
        max_value=MAX_RATE_PER_MINUTE,
        help_text=_("Leave empty for the platform default."),
    )
