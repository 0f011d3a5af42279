"""Forms of the messaging surfaces: the message-log filter (shared by the staff pages and the API's
query parameters, so both filter the same way), template editing and preview, and the staff
one-off message."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from messaging.frequency_cap import MAX_COUNT, MAX_DAYS
from messaging.models import Channel, Kind, Message, MessageTemplate, Status


def _choices(values: Any, *, blank: Any) -> list[tuple[str, Any]]:
    return [("", blank), *values]


class MessageFilterForm(forms.Form):
    channel = forms.ChoiceField(required=False, choices=_choices(Channel.choices, blank=_("Any")))
    kind = forms.ChoiceField(required=False, choices=_choices(Kind.choices, blank=_("Any")))
    status = forms.ChoiceField(required=False, choices=_choices(Status.choices, blank=_("Any")))
    created_since = forms.DateTimeField(
        required=False,
        label=_("Created since"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("A date, or an ISO 8601 time such as 2025-01-31T08:00:00Z."),
    )
    created_until = forms.DateField(
        required=False, label=_("Created until"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def apply(self, messages: QuerySet[Message]) -> QuerySet[Message]:
        data = self.cleaned_data
        for name in ("channel", "kind", "status"):
            if data.get(name):
                messages = messages.filter(**{name: data[name]})
        since = data.get("created_since")
        if since is not None:
            messages = messages.filter(created_at__gte=_aware(since))
        until = data.get("created_until")
        if until is not None:
            end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min)
            messages = messages.filter(created_at__lt=timezone.make_aware(end))
        return messages


def _aware(moment: dt.datetime) -> dt.datetime:
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class TemplateForm(forms.Form):
    """A new template, or a new version of one (name, channel and language then fixed)."""

    name = forms.SlugField(max_length=100, label=_("Name"), help_text=_("e.g. reminder-24h"))
    kind = forms.ChoiceField(choices=Kind.choices, label=_("Kind"))
    channel = forms.ChoiceField(choices=Channel.choices, label=_("Channel"))
    language = forms.CharField(max_length=8, label=_("Language"), initial="sl")
    subject = forms.CharField(max_length=200, required=False, label=_("Subject (e-mail only)"))
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        label=_("Text"),
        help_text=_(
            "Placeholders: {{ first_name }}, {{ last_name }}, {{ organisation_name }}, "
            "{{ unsubscribe_url }} (marketing), and the variables you list below."
        ),
    )
    html_body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label=_("HTML (e-mail only)")
    )
    variables = forms.CharField(
        required=False,
        label=_("Variables"),
        help_text=_("Your own placeholder names, separated by commas, e.g. when, doctor."),
    )

    def variable_names(self) -> list[str]:
        raw = self.cleaned_data.get("variables") or ""
        return [v.strip() for v in raw.split(",") if v.strip()]


class PreviewForm(forms.Form):
    """Sample values as ``name=value`` lines, or a contact whose own values are used."""

    sample = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label=_("Sample values"),
        help_text=_("One per line: name=value, e.g. when=jutri ob 9.00"),
    )
    contact = forms.IntegerField(
        required=False,
        min_value=1,
        label=_("Or a contact's number"),
        help_text=_("Their name and language fill the built-in placeholders."),
    )

    def values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for line in (self.cleaned_data.get("sample") or "").splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip():
                values[name.strip()] = value.strip()
        return values


class StaffMessageForm(forms.Form):
    """A one-off transactional message to one contact, from a template."""

    template = forms.ModelChoiceField(queryset=MessageTemplate.objects.none(), label=_("Template"))
    variables = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label=_("Values"),
        help_text=_("One per line: name=value, e.g. when=jutri ob 9.00"),
    )
    purpose = forms.SlugField(
        initial="appointment_reminders",
        label=_("Purpose"),
        help_text=_("What the message is about, e.g. appointment_reminders."),
    )

    def __init__(self, *args: Any, templates: QuerySet[MessageTemplate], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["template"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = templates
        field.label_from_instance = _template_label  # type: ignore[method-assign,assignment]

    def values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for line in (self.cleaned_data.get("variables") or "").splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip():
                values[name.strip()] = value.strip()
        return values


class MarketingCapForm(forms.Form):
    """The organisation's frequency cap on marketing messages (MSG-4)."""

    count = forms.IntegerField(
        min_value=0,
        max_value=MAX_COUNT,
        label=_("Marketing messages per person"),
        help_text=_(
            "At most this many marketing messages reach one person, SMS, e-mail and WhatsApp "
            "together. 0 means no limit."
        ),
    )
    days = forms.IntegerField(
        min_value=1,
        max_value=MAX_DAYS,
        label=_("In any period of this many days"),
        help_text=_(
            "A rolling period: on any day, the messages sent in the days before it are counted."
        ),
    )


def _template_label(template: MessageTemplate) -> str:
    return (
        f"{template.name} · {template.get_channel_display()} · {template.language} · "
        f"v{template.version}"
    )


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
