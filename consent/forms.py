"""Forms for the consent pages: the patient's own (preferences, sign-up, code) and the staff's.

They carry what was typed; the rules live in the services, whose messages are shown per field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from carely.lib.fill_time import fill_stamp, fill_stamp_age
from consent.models import CONCRETE_CHANNELS, Channel, ObjectionKind, Purpose, Status, Wording
from consent.sending import sms_available
from contacts.forms import EXPORT_PURPOSES

CHANNEL_LABELS: dict[str, Any] = {
    Channel.EMAIL: _("E-mail"),
    Channel.SMS: _("SMS"),
    Channel.WHATSAPP: _("WhatsApp"),
}

# People read and tick a form in more than this; scripts post at once.
FORM_MIN_SECONDS = 3
FORM_MAX_AGE = 24 * 3600


class _Form(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_errors(self, errors: dict[str, list[str]]) -> None:
        """Errors from a service, each under its field (or the form when it has none)."""
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


# --- the patient's pages ------------------------------------------------------------------------


def _switch_name(slug: str, channel: str) -> str:
    return f"{slug}__{channel}"


class PreferencesForm(_Form):
    """One switch per purpose and channel, showing the derived state."""

    def __init__(
        self,
        *args: Any,
        purposes: Sequence[Purpose],
        wordings: dict[int, Wording],
        current: set[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.purposes = list(purposes)
        self.wordings = wordings
        for purpose in self.purposes:
            for channel in CONCRETE_CHANNELS:
                on = (purpose.slug, channel) in current
                self.fields[_switch_name(purpose.slug, channel)] = forms.BooleanField(
                    label=CHANNEL_LABELS[channel],
                    required=False,
                    initial=on,
                    # Without a text to agree to, a switch can be turned off but not on.
                    disabled=purpose.pk not in wordings and not on,
                    widget=forms.CheckboxInput(attrs={"role": "switch", "class": "switch"}),
                )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "purpose": purpose,
                "wording": self.wordings.get(purpose.pk),
                "switches": [self[_switch_name(purpose.slug, c)] for c in CONCRETE_CHANNELS],
            }
            for purpose in self.purposes
        ]

    def chosen(self) -> set[tuple[str, str]]:
        return {
            (purpose.slug, channel)
            for purpose in self.purposes
            for channel in CONCRETE_CHANNELS
            if self.cleaned_data.get(_switch_name(purpose.slug, channel))
        }


def form_started_stamp(at: float | None = None) -> str:
    """The signed time the form was shown, for the minimum fill time."""
    return fill_stamp(SignupForm.STAMP_SALT, at)


class SignupForm(_Form):
    """The public consent form. Abuse resistance without a CAPTCHA: a field only scripts fill
    (``website``, hidden from people and screen readers), a signed "shown at" time that must be
    a few seconds old, and rate limits per network and per recipient (in the view)."""

    STAMP_SALT = "carely.consent.signup.started"

    first_name = forms.CharField(label=_("First name"), required=False, max_length=100)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=100)
    email = forms.CharField(
        label=_("E-mail address"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label=_("Mobile phone number"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
    purposes = forms.MultipleChoiceField(
        label=_("What would you like to receive?"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Tick at least one kind of message.")},
    )
    channels = forms.MultipleChoiceField(
        label=_("How may we send it?"),
        choices=[(c, CHANNEL_LABELS[c]) for c in (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP)],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Tick at least one way we may contact you.")},
    )
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )
    started = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self, *args: Any, purposes: Sequence[Purpose], wordings: dict[int, Wording], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.offered = list(purposes)
        self.wordings = wordings
        self.fields["purposes"].choices = [(p.slug, p.name) for p in self.offered]  # type: ignore[attr-defined]
        self.fields["started"].initial = form_started_stamp()

    def stamp(self) -> str:
        """The stamp to render: the one the person's page had while it is still good, so a
        correction after an error is not slowed down; a fresh one otherwise."""
        if self.is_bound and self._stamp_age(self.data.get("started", "")) is not None:
            return str(self.data["started"])
        return form_started_stamp()

    def _stamp_age(self, stamp: str) -> float | None:
        return fill_stamp_age(stamp, self.STAMP_SALT, FORM_MAX_AGE)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        age = self._stamp_age(str(self.data.get("started", "")))
        if data.get("website") or age is None or age < FORM_MIN_SECONDS:
            raise forms.ValidationError(
                _("Please check your details and send the form again."), code="too_fast"
            )
        if not data.get("email") and data.get("phone") and not sms_available():
            self.add_error(
                "email", _("We can send the code by e-mail only. Please add your e-mail address.")
            )
        return data

    def purpose_rows(self) -> list[dict[str, Any]]:
        boxes = {box.data["value"]: box for box in self["purposes"]}
        return [
            {"purpose": p, "wording": self.wordings[p.pk], "box": boxes[p.slug]}
            for p in self.offered
        ]

    def chosen_wordings(self) -> list[Wording]:
        chosen = set(self.cleaned_data["purposes"])
        return [self.wordings[p.pk] for p in self.offered if p.slug in chosen]


class SignupCodeForm(_Form):
    code = forms.CharField(
        label=_("Confirmation code"),
        max_length=12,
        error_messages={"required": _("Enter the 6-digit code from the message.")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "size": "8"}
        ),
    )


# --- staff pages --------------------------------------------------------------------------------


class WordingChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        text = obj.text if len(obj.text) <= 90 else f"{obj.text[:88]}…"
        return f"{obj.purpose.name} · v{obj.version} ({obj.language}): {text}"


class ConsentRecordForm(_Form):
    wording = WordingChoiceField(
        label=_("Purpose and the text the person was shown"),
        queryset=Wording.objects.none(),
        error_messages={"required": _("Choose the purpose and the text that was shown.")},
    )
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[(Channel.ALL, _("All channels")), *CHANNEL_LABELS.items()],
    )
    status = forms.ChoiceField(
        label=_("Consent"),
        choices=[(Status.GIVEN, _("Given")), (Status.WITHDRAWN, _("Withdrawn"))],
        widget=forms.RadioSelect,
        error_messages={"required": _("Say whether consent was given or withdrawn.")},
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For example: “signed paper form at reception, kept in the file”."),
    )

    def __init__(self, *args: Any, wordings: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["wording"].queryset = wordings  # type: ignore[attr-defined]


class ObjectionForm(_Form):
    kind = forms.ChoiceField(
        label=_("The person objects to"),
        choices=[
            (
                ObjectionKind.DIRECT_MARKETING,
                _("Direct marketing (permanent, cannot be overridden)"),
            ),
            (
                ObjectionKind.LEGITIMATE_INTEREST,
                _("Processing on legitimate interest (stops reminders until the DPO decides)"),
            ),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what the person objects to.")},
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("How it reached you, for example “by phone, 3 March”."),
    )


class GroundsForm(_Form):
    reason = forms.CharField(
        label=_("Compelling legitimate grounds"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,  # the service words the error
        help_text=_(
            "Why the clinic's grounds override this person's interests, rights and freedoms. "
            "Recorded once, with your name and the time."
        ),
    )


class ReceiptPurposeForm(_Form):
    purpose = forms.ChoiceField(
        label=_("Why are you downloading this receipt?"),
        choices=EXPORT_PURPOSES,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose the purpose of the download.")},
    )
