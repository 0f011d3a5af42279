"""Consent API shapes (CON-1, CON-2). Field names are a public contract: never rename one.

Input is checked here for types and choices, each error saying what to send instead; whether the
purpose and wording exist is checked by ``consent.services`` and reported under the same names.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from consent.models import Channel, ConsentEntry, Source, Status

# Sources an integrating system may report. The platform's own ways (unsubscribe link, STOP
# reply, preference page, system) are written by the platform only: a client claiming them
# would put false evidence in the ledger.
API_SOURCES: tuple[str, ...] = (
    Source.FORM,
    Source.API,
    Source.STAFF,
    Source.IMPORT,
    Source.GUARDIAN,
)


def _one_of(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(values)


class ConsentInSerializer(serializers.Serializer[Any]):
    purpose = serializers.SlugField(
        max_length=50,
        help_text="The purpose's slug, e.g. marketing, reminders, surveys, review-requests.",
        error_messages={"invalid": "Give the purpose's slug, for example “marketing”."},
    )
    channel = serializers.ChoiceField(
        choices=Channel.values,
        help_text="sms, email, whatsapp, or all (every channel).",
        error_messages={
            "invalid_choice": "“{input}” is not a channel. Use one of: "
            f"{_one_of(Channel.values)}."
        },
    )
    status = serializers.ChoiceField(
        choices=Status.values,
        error_messages={
            "invalid_choice": f"“{{input}}” is not a status. Use one of: {_one_of(Status.values)}."
        },
    )
    wording_version = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=20,
        help_text="The version of the consent text the person was shown. Required to give "
        "consent; the text in the contact's language is recorded.",
    )
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=list(API_SOURCES),
        help_text="How it was collected. “guardian” records a parent's or guardian's consent "
        "for a minor and needs the guardian set on the contact.",
        error_messages={
            "invalid_choice": f"“{{input}}” is not a source this API accepts. Use one of: "
            f"{_one_of(API_SOURCES)}."
        },
    )
    ip_address = serializers.IPAddressField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="The person's IP address when they consented, if known.",
        error_messages={"invalid": "Give an IPv4 or IPv6 address, or leave the field out."},
    )
    user_agent = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=2000,
        trim_whitespace=True,
        help_text="The person's browser user agent, if known (kept up to 500 characters).",
    )


class ConsentEntrySerializer(serializers.ModelSerializer[ConsentEntry]):
    purpose: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    wording_version = serializers.CharField(source="wording.version", default=None)
    wording_language = serializers.CharField(source="wording.language", default=None)

    class Meta:
        model = ConsentEntry
        fields: ClassVar = [
            "id",
            "purpose",
            "channel",
            "status",
            "wording_version",
            "wording_language",
            "source",
            "cause",
            "guardian",
            "recorded_by",
            "api_key",
            "recorded_at",
            "ip_address",
            "user_agent",
            "note",
        ]
        read_only_fields = fields


class ConsentStateSerializer(serializers.Serializer[Any]):
    purpose = serializers.CharField()
    channel = serializers.ChoiceField(choices=[c for c in Channel.values if c != Channel.ALL])
    status = serializers.ChoiceField(
        choices=Status.values, allow_null=True, help_text="null: nothing recorded yet."
    )
    entry_id = serializers.IntegerField(allow_null=True)
    recorded_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]
    cause = serializers.CharField(allow_null=True)
    guardian_entry_id = serializers.IntegerField(
        allow_null=True, help_text="The latest entry by a parent or guardian (CNT-6), if any."
    )


class ConsentLedgerSerializer(serializers.Serializer[Any]):
    contact = serializers.IntegerField()
    ledger = ConsentEntrySerializer(many=True)
    current = ConsentStateSerializer(many=True)
