from __future__ import annotations

from django import forms

from carely.privacy.models import ProcessingPurpose


class ProcessingPurposeForm(forms.ModelForm):
    class Meta:
        model = ProcessingPurpose
        fields = ["name", "description", "legal_basis", "legal_basis_note"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
