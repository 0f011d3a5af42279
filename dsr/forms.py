"""Forms of the request pages: the DPO's queue filters and actions, staff entry, the public form.

They carry what was typed and turn it into a service call's arguments; the rules live in
``dsr.services``, whose ``DsrInvalid`` errors are shown under the field they name
(``add_service_errors``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from carely.lib.fill_time import fill_stamp, fill_stamp_age
from contacts.forms import FIELD_LABELS
from contacts.validation import FIELDS as CONTACT_FIELDS
from dsr.models import Decision, ReplyChannel, RequestChannel, RequestType, State, SubjectKind

# What staff see for each code; the models' labels are English-only (they also feed the API).
TYPE_LABELS: dict[str, Any] = {
    RequestType.ACCESS: _("Access"),
    RequestType.RECTIFICATION: _("Rectification"),
    RequestType.ERASURE: _("Erasure"),
    RequestType.RESTRICTION: _("Restriction"),
    RequestType.PORTABILITY: _("Portability"),
    RequestType.OBJECTION: _("Objection"),
    RequestType.WITHDRAWAL: _("Consent withdrawal"),
}
STATE_LABELS: dict[str, Any] = {
    State.RECEIVED: _("Received"),
    State.AWAITING_VERIFICATION: _("Awaiting identity check"),
    State.AWAITING_INFORMATION: _("Awaiting information"),
    State.VERIFIED: _("Identity verified"),
    State.DECIDED: _("Decided"),
    State.EXECUTED: _("Carried out"),
    State.CLOSED: _("Closed"),
    State.FORWARDED: _("Forwarded to the clinic"),
}
CHANNEL_LABELS: dict[str, Any] = {
    RequestChannel.FORM: _("Online form"),
    RequestChannel.API: _("API"),
    RequestChannel.EMAIL: _("E-mail"),
    RequestChannel.LETTER: _("Letter"),
    RequestChannel.PHONE: _("Phone"),
    RequestChannel.IN_PERSON: _("In person"),
    RequestChannel.FORWARDED: _("Forwarded by the platform"),
}
DECISION_LABELS: dict[str, Any] = {
    Decision.GRANTED: _("Grant"),
    Decision.FEE: _("Grant against a reasonable fee"),
    Decision.REFUSED_UNFOUNDED: _("Refuse: manifestly unfounded"),
    Decision.REFUSED_EXCESSIVE: _("Refuse: manifestly excessive (e.g. repetitive)"),
    Decision.REFUSED_IDENTITY: _("Refuse: the subject cannot be identified"),
    Decision.REFUSED_COMPELLING_GROUNDS: _("Refuse the objection: compelling legitimate grounds"),
}
# The decision once taken, as the request's page states it.
DECIDED_LABELS: dict[str, Any] = {
    Decision.GRANTED: _("Granted"),
    Decision.FEE: _("Granted against a reasonable fee"),
    Decision.REFUSED_UNFOUNDED: _("Refused: manifestly unfounded"),
    Decision.REFUSED_EXCESSIVE: _("Refused: manifestly excessive"),
    Decision.REFUSED_IDENTITY: _("Refused: the subject could not be identified"),
    Decision.REFUSED_COMPELLING_GROUNDS: _("Objection refused: compelling legitimate grounds"),
}
REPLY_LABELS: dict[str, Any] = {
    ReplyChannel.EMAIL: _("E-mail"),
    ReplyChannel.SMS: _("SMS"),
    ReplyChannel.LETTER: _("Letter (sent by staff)"),
}
SUBJECT_KIND_LABELS: dict[str, Any] = {
    SubjectKind.STAFF_USER: _("I use Carely PEP at work (a user account)"),
    SubjectKind.CUSTOMER_CONTACT: _("I am a contact person of a Carely PEP customer"),
    SubjectKind.VISITOR: _("I visited a Carely PEP website"),
}
LANGUAGE_CHOICES = [("sl", "Slovenščina"), ("en", "English")]
# Staff record what came in on paper, by phone or by e-mail; forms and the API record themselves.
STAFF_CHANNELS = (
    RequestChannel.LETTER,
    RequestChannel.EMAIL,
    RequestChannel.PHONE,
    RequestChannel.IN_PERSON,
)
# A letter or an e-mail is evidence in itself: keep the original with the request.
ORIGINAL_REQUIRED = (RequestChannel.LETTER, RequestChannel.EMAIL)
RECTIFIABLE = tuple(f for f in CONTACT_FIELDS if f not in ("source",))
RECTIFICATION_ROWS = 4

# People read and fill a form in more than this; scripts post at once. A page left open longer
# than the maximum is refused too, so a harvested stamp cannot be replayed for hours.
FORM_MIN_SECONDS = 3
FORM_MAX_SECONDS = 2 * 3600
STAMP_SALT = "carely.dsr.public.started"


def _choices(labels: dict[str, Any]) -> list[tuple[str, Any]]:
    return list(labels.items())


class _Form(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    # Service field names that differ from the form's ("subject.email" is the form's "email").
    SERVICE_FIELDS: dict[str, str] = {}

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """``DsrInvalid.errors`` under the field each names, or the form when it has none."""
        for name, messages in errors.items():
            field = self.SERVICE_FIELDS.get(name, name)
            for message in messages:
                self.add_error(field if field in self.fields else None, message)


# --- queue --------------------------------------------------------------------------------------


class QueueFilterForm(_Form):
    OPEN = "open"
    ALL = "all"

    state = forms.ChoiceField(label=_("State"), required=False)
    type = forms.ChoiceField(label=_("Type"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = [  # type: ignore[attr-defined]
            (self.OPEN, _("Open only")),
            (self.ALL, _("All")),
            *_choices(STATE_LABELS),
        ]
        self.fields["type"].choices = [("", _("All types")), *_choices(TYPE_LABELS)]  # type: ignore[attr-defined]

    def wanted(self) -> tuple[str, str]:
        """(state filter, type filter); "open only" when nothing valid was asked for."""
        if not self.is_bound or not self.is_valid():
            return self.OPEN, ""
        return self.cleaned_data.get("state") or self.OPEN, self.cleaned_data.get("type") or ""


class ForwardForm(_Form):
    organisation: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Clinic"),
        queryset=None,
        empty_label=_("Choose the clinic"),
        error_messages={"required": _("Choose the clinic the person is a patient of.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from carely.orgs.models import Organisation

        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = Organisation.objects.order_by("name")  # type: ignore[attr-defined]


# --- identity -----------------------------------------------------------------------------------


class CodeSendForm(_Form):
    channel = forms.ChoiceField(
        label=_("Send the code by"),
        choices=[("email", _("E-mail")), ("sms", _("SMS"))],
        widget=forms.RadioSelect,
    )


class CodeCheckForm(_Form):
    code = forms.CharField(
        label=_("Code the subject read out"),
        max_length=12,
        error_messages={"required": _("Enter the 6-digit code.")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "size": "8"}
        ),
    )


class AttestForm(_Form):
    statement = forms.CharField(
        label=_("How you identified the subject"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "For example: identity card checked at reception; called back on the number on file."
        ),
    )
    evidence = forms.FileField(
        label=_("Evidence"),
        required=False,
        help_text=_("A scan of the signed form or a note of the call-back (at most 10 MB)."),
    )


class InfoRequestForm(_Form):
    what = forms.CharField(
        label=_("What you need from the subject, and why"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    identity = forms.BooleanField(
        label=_(
            "Needed to identify the subject (the one-month clock starts again when it arrives)"
        ),
        required=False,
    )


class InfoReceivedForm(_Form):
    note = forms.CharField(
        label=_("What arrived"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    attachment = forms.FileField(label=_("Attach it"), required=False)


class ConfirmSubjectForm(_Form):
    contact = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


# --- deadline and decision ------------------------------------------------------------------------


class ExtendForm(_Form):
    reason = forms.CharField(
        label=_("Why two more months are needed"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Complexity or the number of requests. The subject receives this text, and the "
            "evidence pack keeps it: name no one and no health details."
        ),
    )


class DecideForm(_Form):
    SERVICE_FIELDS = {"fee_cents": "fee"}

    decision = forms.ChoiceField(label=_("Decision"), choices=_choices(DECISION_LABELS))
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Needed for a refusal or a fee; the subject reads it, with their right to complain "
            "to the Information Commissioner. The evidence pack keeps it: name no one and no "
            "health details."
        ),
    )
    fee = forms.DecimalField(
        label=_("Fee in EUR"),
        required=False,
        min_value=Decimal("0.01"),
        max_digits=7,
        decimal_places=2,
    )

    def __init__(self, *args: Any, request_type: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if request_type and request_type != RequestType.OBJECTION:
            # Compelling legitimate grounds answer an objection only (DSR-11).
            self.fields["decision"].choices = [  # type: ignore[attr-defined]
                (k, v)
                for k, v in DECISION_LABELS.items()
                if k != Decision.REFUSED_COMPELLING_GROUNDS
            ]

    def fee_cents(self) -> int | None:
        fee = self.cleaned_data.get("fee")
        return int(fee * 100) if fee is not None else None


# --- carrying it out ------------------------------------------------------------------------------


class ExecuteForm(_Form):
    """The fields the request's type needs; the rest are left out of the form."""

    SERVICE_FIELDS = {"objection.kind": "objection"}

    statement = forms.CharField(
        label=_("Supplementary statement"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Completes the record where data was incomplete (kept with its history)."),
    )
    objection = forms.ChoiceField(
        label=_("The objection is to"),
        choices=[
            ("direct_marketing", _("direct marketing (always upheld)")),
            ("legitimate_interest", _("processing on legitimate interest")),
        ],
    )
    purposes = forms.MultipleChoiceField(
        label=_("Withdraw consent for"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave all unticked to withdraw every consent the contact gave."),
    )
    reason = forms.CharField(label=_("Reason for the restriction"), required=False)
    push_url = forms.URLField(
        label=_("Also send the data to (HTTPS address of the other controller)"),
        required=False,
        assume_scheme="https",
    )

    note = forms.CharField(
        label=_("What was done"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Which records were found, corrected or deleted, by hand. Kept with the request."
        ),
    )

    FIELDS_BY_TYPE: dict[str, tuple[str, ...]] = {
        RequestType.RECTIFICATION: ("statement",),
        RequestType.OBJECTION: ("objection",),
        RequestType.WITHDRAWAL: ("purposes",),
        RequestType.RESTRICTION: ("reason",),
        RequestType.PORTABILITY: ("push_url",),
    }
    # A platform user's own account: what a rectification may change (dsr.platform).
    PLATFORM_RECTIFIABLE = {"full_name": _("Full name"), "preferred_language": _("Language")}

    def __init__(
        self,
        *args: Any,
        request_type: str,
        purposes: list[tuple[str, str]],
        platform: bool = False,
        **kwargs: Any,
    ) -> None:
        """``platform``: a request in the platform's queue, carried out through its registry
        for a user's account or by hand (then with a note of what was done)."""
        super().__init__(*args, **kwargs)
        self.request_type = request_type
        keep = ("note",) if platform else self.FIELDS_BY_TYPE.get(request_type, ())
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if "purposes" in self.fields:
            self.fields["purposes"].choices = purposes  # type: ignore[attr-defined]
        if request_type == RequestType.RECTIFICATION:
            labels = (
                self.PLATFORM_RECTIFIABLE if platform else {f: FIELD_LABELS[f] for f in RECTIFIABLE}
            )
            field_choices = [("", _("Choose a field")), *labels.items()]
            for n in range(1, RECTIFICATION_ROWS + 1):
                self.fields[f"field_{n}"] = forms.ChoiceField(
                    label=_("Field"), required=False, choices=field_choices
                )
                self.fields[f"value_{n}"] = forms.CharField(
                    label=_("Correct value"), required=False, max_length=1000
                )

    def change_rows(self) -> list[tuple[Any, Any]]:
        return [(self[f"field_{n}"], self[f"value_{n}"]) for n in range(1, RECTIFICATION_ROWS + 1)]

    def other_fields(self) -> list[Any]:
        return [f for f in self if not f.name.startswith(("field_", "value_"))]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.request_type == RequestType.RECTIFICATION:
            for n in range(1, RECTIFICATION_ROWS + 1):
                if data.get(f"value_{n}") and not data.get(f"field_{n}"):
                    self.add_error(f"field_{n}", _("Choose which field this value corrects."))
        return data

    def params(self) -> dict[str, Any]:
        """The ``dsr_execute`` params of the request's type."""
        params = self._type_params()
        if self.cleaned_data.get("note"):
            params["note"] = self.cleaned_data["note"]
        return params

    def _type_params(self) -> dict[str, Any]:
        data = self.cleaned_data
        if self.request_type == RequestType.RECTIFICATION:
            changes = {
                data[f"field_{n}"]: data.get(f"value_{n}", "")
                for n in range(1, RECTIFICATION_ROWS + 1)
                if data.get(f"field_{n}")
            }
            if "statement" not in self.fields:
                return {"changes": changes}
            return {"changes": changes, "statement": data.get("statement", "")}
        if self.request_type == RequestType.OBJECTION:
            return {"objection": data["objection"]}
        if self.request_type == RequestType.WITHDRAWAL:
            return {"purposes": list(data.get("purposes") or [])}
        if self.request_type == RequestType.RESTRICTION:
            return {"reason": data["reason"]} if data.get("reason") else {}
        if self.request_type == RequestType.PORTABILITY:
            return {"push_url": data["push_url"]} if data.get("push_url") else {}
        return {}


class CloseForm(_Form):
    note = forms.CharField(
        label=_("Closing note (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ComplaintForm(_Form):
    details = forms.CharField(
        label=_("What the subject finds wrong with the answer"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )


# --- staff entry ----------------------------------------------------------------------------------


class StaffEntryForm(_Form):
    """A request that reached the clinic by letter, phone, e-mail or in person (DSR-1)."""

    SERVICE_FIELDS = {
        "subject.name": "name",
        "subject.email": "email",
        "subject.phone": "phone",
        "subject.external_id": "external_id",
        "subject.contact": "contact",
        "subject": "email",
        "attachment": "original",
    }

    type = forms.ChoiceField(label=_("What the person asks for"), choices=_choices(TYPE_LABELS))
    channel = forms.ChoiceField(
        label=_("How it reached you"),
        choices=[(c, CHANNEL_LABELS[c]) for c in STAFF_CHANNELS],
    )
    received_date = forms.DateField(
        label=_("Received on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    received_time = forms.TimeField(
        label=_("at"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    name = forms.CharField(label=_("Name"), required=False, max_length=200)
    email = forms.CharField(
        label=_("E-mail address"), required=False, max_length=254, widget=forms.EmailInput
    )
    phone = forms.CharField(label=_("Phone"), required=False, max_length=40)
    external_id = forms.CharField(label=_("Customer number"), required=False, max_length=100)
    contact = forms.IntegerField(
        label=_("Or the contact's id in Carely"),
        required=False,
        min_value=1,
        help_text=_("When you already know which contact it is."),
    )
    details = forms.CharField(
        label=_("What the request says"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    language = forms.ChoiceField(label=_("Answer in"), choices=LANGUAGE_CHOICES)
    reply_channel = forms.ChoiceField(
        label=_("Answer by"),
        required=False,
        choices=[("", _("The way it came")), *_choices(REPLY_LABELS)],
    )
    original = forms.FileField(
        label=_("The original (scan of the letter, the e-mail saved as a file)"),
        required=False,
        help_text=_("Required for letters and e-mails; at most 10 MB."),
    )

    subject_kind = forms.ChoiceField(
        label=_("Who the person is to the platform"),
        choices=[
            (SubjectKind.STAFF_USER, _("A user of Carely PEP")),
            (SubjectKind.CUSTOMER_CONTACT, _("A customer's contact person")),
            (SubjectKind.VISITOR, _("A visitor of our websites")),
        ],
    )

    def __init__(self, *args: Any, platform: bool = False, **kwargs: Any) -> None:
        """``platform``: for the platform's queue, which holds no clinic's contacts and says
        instead who the person is to the platform."""
        super().__init__(*args, **kwargs)
        now = timezone.localtime()
        self.fields["received_date"].initial = now.date()
        self.fields["received_time"].initial = now.strftime("%H:%M")
        self.platform = platform
        del self.fields["contact" if platform else "subject_kind"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("channel") in ORIGINAL_REQUIRED and not data.get("original"):
            self.add_error(
                "original",
                _("Attach the letter or e-mail: the original is the record of what was asked."),
            )
        return data

    def received_at(self) -> dt.datetime:
        data = self.cleaned_data
        naive = dt.datetime.combine(data["received_date"], data["received_time"])
        return timezone.make_aware(naive, timezone.get_current_timezone())

    def subject(self) -> dict[str, Any]:
        data = self.cleaned_data
        subject = {k: data[k] for k in ("name", "email", "phone", "external_id") if data.get(k)}
        if data.get("contact"):
            subject["contact"] = data["contact"]
        return subject


# --- the public form ------------------------------------------------------------------------------


def form_started_stamp(at: float | None = None) -> str:
    """The signed time the form was shown (the minimum and maximum fill time)."""
    return fill_stamp(STAMP_SALT, at)


class PublicRequestForm(_Form):
    """A data subject's own request, no account (DSR-1). Abuse resistance without a CAPTCHA: a
    field only scripts fill (``website``, hidden from people and screen readers), a signed
    "shown at" time that must be 3 seconds to 2 hours old, and rate limits (in the view)."""

    SERVICE_FIELDS = {
        "subject.name": "name",
        "subject.email": "email",
        "subject.phone": "phone",
        "subject": "email",
    }
    TOO_FAST = "too_fast"

    type = forms.ChoiceField(
        label=_("What would you like us to do?"),
        choices=[
            (RequestType.ACCESS, _("Tell me what data you hold about me and give me a copy")),
            (RequestType.RECTIFICATION, _("Correct or complete my data")),
            (RequestType.ERASURE, _("Erase my data")),
            (RequestType.RESTRICTION, _("Restrict the processing of my data")),
            (RequestType.PORTABILITY, _("Give me my data to take elsewhere")),
            (RequestType.OBJECTION, _("I object to the processing of my data")),
            (RequestType.WITHDRAWAL, _("I withdraw my consent")),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what you would like us to do.")},
    )
    name = forms.CharField(
        label=_("Your name"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
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
    details = forms.CharField(
        label=_("Anything that helps us (optional)"),
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For example what should be corrected. Please do not send health details."),
    )
    language = forms.ChoiceField(label=_("Answer me in"), choices=LANGUAGE_CHOICES)
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )
    started = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, language: str = "sl", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].initial = language if language in ("sl", "en") else "sl"

    def stamp(self) -> str:
        """The page's own stamp while it is still good (a correction is not slowed down)."""
        if self.is_bound and stamp_age(str(self.data.get("started", ""))) is not None:
            return str(self.data["started"])
        return form_started_stamp()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        age = stamp_age(str(self.data.get("started", "")))
        if data.get("website") or age is None or age < FORM_MIN_SECONDS:
            raise forms.ValidationError(
                _(
                    "We could not accept the form as sent. Please check your details and send "
                    "it again."
                ),
                code=self.TOO_FAST,
            )
        if not data.get("email") and not data.get("phone"):
            self.add_error(
                "email", _("Give an e-mail address or a phone number, so that we can answer you.")
            )
        return data

    def subject(self) -> dict[str, Any]:
        return {
            k: self.cleaned_data[k] for k in ("name", "email", "phone") if self.cleaned_data.get(k)
        }


def stamp_age(stamp: str) -> float | None:
    """Seconds since the form was shown, or None for a missing, forged or too old stamp."""
    return fill_stamp_age(stamp, STAMP_SALT, FORM_MAX_SECONDS)


class PlatformRequestForm(PublicRequestForm):
    subject_kind = forms.ChoiceField(
        label=_("Who are you to us?"),
        choices=_choices(SUBJECT_KIND_LABELS),
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose how you know Carely PEP.")},
    )

    field_order = ["subject_kind", "type"]


class PublicCodeForm(_Form):
    code = forms.CharField(
        label=_("Your code"),
        max_length=12,
        error_messages={"required": _("Enter the 6-digit code from the message.")},
    )
