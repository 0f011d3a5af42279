"""Forms of the campaign pages. They shape what a person typed into what the services take; the
services (``campaigns.services``, ``campaigns.audiences.filters_clean``) decide what is valid, and
their per-field problems are put back next to the field they name."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.audiences import CONSENT_STATES
from campaigns.models import Schedule, State
from consent.models import Purpose
from contacts.models import Gender, RelationshipStatus, SourceKind
from messaging.models import Kind, MessageTemplate

CHANNEL_CHOICES = [("whatsapp", "WhatsApp"), ("sms", "SMS"), ("email", _("E-mail"))]
CHANNEL_LABELS = dict(CHANNEL_CHOICES)
LANGUAGE_NAMES = {
    "sl": _("Slovenian"),
    "en": _("English"),
    "de": _("German"),
    "hr": _("Croatian"),
    "it": _("Italian"),
}
# The age bands a receptionist picks most; "custom" leaves the two numbers as typed.
AGE_PRESETS = [
    ("", _("Any, or type below")),
    ("18-29", "18-29"),
    ("30-44", "30-44"),
    ("45-64", "45-64"),
    ("65-", "65+"),
]
_DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def _choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


def _tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


class StateFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"), required=False, choices=[("", _("All states")), *State.choices]
    )


class AudienceForm(forms.Form):
    """Every filter of ``campaigns.audiences``; blank means "anyone"."""

    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    languages = forms.MultipleChoiceField(
        label=_("Languages"),
        required=False,
        choices=list(LANGUAGE_NAMES.items()),
        widget=forms.CheckboxSelectMultiple,
    )
    genders = forms.MultipleChoiceField(
        label=_("Genders"),
        required=False,
        choices=Gender.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    age_band = forms.ChoiceField(label=_("Age band"), required=False, choices=AGE_PRESETS)
    age_min = forms.CharField(label=_("Age from"), required=False, max_length=3)
    age_max = forms.CharField(label=_("Age to"), required=False, max_length=3)
    source_kinds = forms.MultipleChoiceField(
        label=_("How they came to us"),
        required=False,
        choices=SourceKind.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    sources = forms.CharField(
        label=_("Sources"),
        required=False,
        help_text=_("Comma-separated, as written on the contacts, e.g. spring-fair, website."),
    )
    relationship_statuses = forms.MultipleChoiceField(
        label=_("Relationship"),
        required=False,
        choices=RelationshipStatus.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    relationship_started_from = forms.CharField(
        label=_("Relationship started on or after"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    relationship_started_to = forms.CharField(
        label=_("Relationship started on or before"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    relationship_ended_from = forms.CharField(
        label=_("Relationship ended on or after"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    relationship_ended_to = forms.CharField(
        label=_("Relationship ended on or before"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    tags_any = forms.CharField(
        label=_("Has any of these tags"), required=False, help_text=_("Comma-separated.")
    )
    tags_all = forms.CharField(
        label=_("Has all of these tags"), required=False, help_text=_("Comma-separated.")
    )
    tags_none = forms.CharField(
        label=_("Has none of these tags"), required=False, help_text=_("Comma-separated.")
    )
    consent_purpose = forms.ChoiceField(label=_("Consent for purpose"), required=False)
    consent_channel = forms.ChoiceField(
        label=_("Consent on channel"),
        required=False,
        choices=[("all", _("all channels")), *CHANNEL_CHOICES],
    )
    consent_state = forms.ChoiceField(
        label=_("Consent state"),
        required=False,
        choices=[
            (s, label)
            for s, label in zip(
                CONSENT_STATES, [_("given"), _("withdrawn"), _("never asked")], strict=True
            )
        ],
    )

    # Where ``filters_clean``'s problem keys are shown.
    PROBLEM_FIELDS: Mapping[str, str] = {"consent[1]": "consent_purpose", "filters": "name"}

    def __init__(self, *args: Any, organisation: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        purposes = Purpose.objects.for_organisation(organisation).order_by("slug")
        _choice_field(self, "consent_purpose").choices = [
            ("", _("No consent rule")),
            *[(p.slug, p.name or p.slug) for p in purposes],
        ]

    @classmethod
    def initial_from(cls, audience: Any) -> dict[str, Any]:
        f = dict(audience.filters or {})
        initial: dict[str, Any] = {"name": audience.name, "description": audience.description}
        for key in ("languages", "genders", "source_kinds", "relationship_statuses"):
            initial[key] = f.get(key, [])
        for key in ("sources", "tags_any", "tags_all", "tags_none"):
            initial[key] = ", ".join(f.get(key, []))
        for key in (
            "age_min",
            "age_max",
            "relationship_started_from",
            "relationship_started_to",
            "relationship_ended_from",
            "relationship_ended_to",
        ):
            initial[key] = f.get(key, "")
        rules = f.get("consent") or []
        if rules:
            initial.update(
                consent_purpose=rules[0]["purpose"],
                consent_channel=rules[0]["channel"],
                consent_state=rules[0]["state"],
            )
        return initial

    def filters(self) -> dict[str, Any]:
        """The raw filter for ``filters_clean`` (which checks it)."""
        data = self.cleaned_data
        raw: dict[str, Any] = {}
        for key in ("languages", "genders", "source_kinds", "relationship_statuses"):
            raw[key] = list(data.get(key) or [])
        for key in ("sources", "tags_any", "tags_all", "tags_none"):
            raw[key] = _tags(data.get(key) or "")
        age_min, age_max = data.get("age_min") or "", data.get("age_max") or ""
        band = data.get("age_band") or ""
        if band:
            low, _sep, high = band.partition("-")
            age_min, age_max = low, high
        raw["age_min"], raw["age_max"] = age_min.strip(), age_max.strip()
        for key in (
            "relationship_started_from",
            "relationship_started_to",
            "relationship_ended_from",
            "relationship_ended_to",
        ):
            raw[key] = (data.get(key) or "").strip()
        if data.get("consent_purpose"):
            raw["consent"] = [
                {
                    "purpose": data["consent_purpose"],
                    "channel": data.get("consent_channel") or "all",
                    "state": data.get("consent_state") or "given",
                }
            ]
        return raw

    def problems_show(self, problems: Mapping[str, str]) -> None:
        for key, message in problems.items():
            key = key.removeprefix("filters.")
            field = self.PROBLEM_FIELDS.get(key, key)
            # The service names the other field by its code; the page calls it by its label.
            message = message.replace("age_min", str(self.fields["age_min"].label))
            self.add_error(field if field in self.fields else None, message)


def _aware(value: str, tz: zoneinfo.ZoneInfo) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.strptime(value, _DATETIME_LOCAL).replace(tzinfo=tz)


class CampaignForm(forms.Form):
    """The builder: what, to whom, how and when. Template fields are added per channel and
    language (``tpl_<channel>_<language>``) from the organisation's marketing templates."""

    name = forms.CharField(label=_("Name"), max_length=150)
    purpose = forms.ChoiceField(label=_("Purpose"))
    channel_1 = forms.ChoiceField(label=_("Send by"), choices=CHANNEL_CHOICES, initial="sms")
    channel_2 = forms.ChoiceField(
        label=_("then, if not possible, by"),
        required=False,
        choices=[("", _("nothing else")), *CHANNEL_CHOICES],
    )
    channel_3 = forms.ChoiceField(
        label=_("then by"), required=False, choices=[("", _("nothing else")), *CHANNEL_CHOICES]
    )
    audience = forms.ChoiceField(label=_("Audience"), required=False)
    fallback_language = forms.ChoiceField(
        label=_("Fallback language"),
        help_text=_("Contacts whose language has no template get this language's template."),
    )
    schedule = forms.ChoiceField(
        label=_("Send"),
        choices=[
            (Schedule.NOW, _("As soon as it is approved")),
            (Schedule.AT, _("At a time")),
            (Schedule.WINDOW, _("Spread over a window")),
        ],
        widget=forms.RadioSelect,
        initial=Schedule.NOW,
    )
    send_at = forms.CharField(
        label=_("Send at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    send_until = forms.CharField(
        label=_("Window ends at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args: Any, organisation: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        self.tz = zoneinfo.ZoneInfo(organisation.time_zone or "Europe/Ljubljana")
        from campaigns.models import Audience

        _choice_field(self, "purpose").choices = [
            (p.slug, p.name or p.slug)
            for p in Purpose.objects.for_organisation(organisation).order_by("slug")
        ]
        _choice_field(self, "audience").choices = [
            ("", _("Choose an audience")),
            *[(str(a.pk), a.name) for a in Audience.objects.for_organisation(organisation)],
        ]
        templates = list(
            MessageTemplate.objects.for_organisation(organisation)
            .filter(kind=Kind.MARKETING, retired_at__isnull=True)
            .order_by("channel", "language", "name")
        )
        languages = sorted(
            {t.language[:2] for t in templates} | {(organisation.default_language or "sl")[:2]}
        )
        _choice_field(self, "fallback_language").choices = [
            (code, LANGUAGE_NAMES.get(code, code)) for code in languages
        ]
        self.fields["fallback_language"].initial = (organisation.default_language or "sl")[:2]
        # (channel, language, field name), in the order the page shows them.
        self.template_slots: list[tuple[str, str, str]] = []
        for channel, channel_label in CHANNEL_CHOICES:
            for language in languages:
                options = [
                    t for t in templates if t.channel == channel and t.language[:2] == language
                ]
                if not options:
                    continue
                name = f"tpl_{channel}_{language}"
                self.fields[name] = forms.ChoiceField(
                    label=f"{channel_label} · {LANGUAGE_NAMES.get(language, language)}",
                    required=False,
                    choices=[
                        ("", _("No template")),
                        *[(str(t.pk), f"{t.name} v{t.version}") for t in options],
                    ],
                )
                self.fields[name].widget.attrs.update(
                    {"data-channel": channel, "data-language": language, "class": "tpl-select"}
                )
                self.template_slots.append((channel, language, name))

    def template_fields(self) -> list[tuple[str, str, forms.BoundField]]:
        return [(c, lang, self[name]) for c, lang, name in self.template_slots]

    @classmethod
    def initial_from(cls, campaign: Any, tz: zoneinfo.ZoneInfo) -> dict[str, Any]:
        channels = [*campaign.channels, "", ""]
        initial: dict[str, Any] = {
            "name": campaign.name,
            "purpose": campaign.purpose,
            "channel_1": channels[0],
            "channel_2": channels[1],
            "channel_3": channels[2],
            "audience": str(campaign.audience_id or ""),
            "fallback_language": campaign.fallback_language,
            "schedule": campaign.schedule,
        }
        for key in ("send_at", "send_until"):
            value = getattr(campaign, key)
            initial[key] = value.astimezone(tz).strftime(_DATETIME_LOCAL) if value else ""
        for t in campaign.templates.all():
            initial[f"tpl_{t.channel}_{t.language}"] = str(t.template_id)
        return initial

    def clean_send_at(self) -> dt.datetime | None:
        return self._moment("send_at")

    def clean_send_until(self) -> dt.datetime | None:
        return self._moment("send_until")

    def _moment(self, key: str) -> dt.datetime | None:
        try:
            return _aware(self.cleaned_data.get(key) or "", self.tz)
        except ValueError:
            raise forms.ValidationError(
                _("Write a date and time, e.g. 2026-12-01T09:30.")
            ) from None

    def channels(self) -> list[str]:
        picked = [self.cleaned_data.get(f"channel_{n}") or "" for n in (1, 2, 3)]
        return [c for c in picked if c]

    def fields_for_service(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "purpose": data["purpose"],
            "channels": self.channels(),
            "audience": int(data["audience"]) if data.get("audience") else None,
            "fallback_language": data["fallback_language"],
            "schedule": data["schedule"],
            "send_at": data.get("send_at") if data["schedule"] != Schedule.NOW else None,
            "send_until": data.get("send_until") if data["schedule"] == Schedule.WINDOW else None,
        }

    def templates_for_service(self) -> dict[tuple[str, str], int]:
        """Only the chosen channels' templates: a template left on a channel the campaign no
        longer uses would make no sense to the approver."""
        chosen = set(self.channels())
        return {
            (channel, language): int(self.cleaned_data[name])
            for channel, language, name in self.template_slots
            if channel in chosen and self.cleaned_data.get(name)
        }

    def problems_show(self, problems: Mapping[str, str]) -> None:
        for key, message in problems.items():
            if key == "channels":
                field: str | None = "channel_1"
            elif key.startswith("templates."):
                parts = key.split(".")
                field = f"tpl_{parts[1]}_{parts[2]}" if len(parts) == 3 else None
                if field is None or field not in self.fields:
                    field = next((n for c, _lang, n in self.template_slots if c == parts[1]), None)
            else:
                field = key
            self.add_error(field if field in self.fields else None, message)


class NoteForm(forms.Form):
    note = forms.CharField(
        label=_("What needs to change"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )
