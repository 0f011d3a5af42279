"""Shapes of ``/api/v1/messages/`` (MSG-2, MSG-6, CON-7)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.models import Channel, Message, MessageEvent

TEXT_MAX = 4000


@extend_schema_field(OpenApiTypes.STR)
class TemplateRefField(serializers.Field):
    """A template's id (a number) or its name (text): the current version is used."""

    default_error_messages = {"invalid": "Give the template's id (a number) or its name (text)."}

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not data.strip():
            self.fail("invalid")
        return data.strip() if isinstance(data, str) else data

    def to_representation(self, value: Any) -> Any:
        return value


class MessageInSerializer(serializers.Serializer):
    contact = serializers.IntegerField(required=False, min_value=1)
    external_id = serializers.CharField(required=False, max_length=100)
    channel = serializers.ChoiceField(choices=Channel.choices)
    purpose = serializers.SlugField(max_length=60)
    template = TemplateRefField(required=False)
    variables = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=1000), required=False
    )
    text = serializers.CharField(required=False, max_length=TEXT_MAX)
    send_at = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if ("contact" in attrs) == ("external_id" in attrs):
            errors["contact"] = ["Give either contact (our id) or external_id, not both."]
        if ("template" in attrs) == ("text" in attrs):
            errors["template"] = ["Give either a template (id or name) or a text."]
        if "text" in attrs and attrs.get("variables"):
            errors["variables"] = [
                "Variables fill a template's placeholders; a text is sent as is."
            ]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class MessageAcceptedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ("id", "status", "legal_basis", "consent_entry_id", "channel", "kind", "due_at")


class MessageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageEvent
        fields = ("kind", "at", "recorded_at", "source", "detail")


LIST_FIELDS: tuple[str, ...] = (
    "id",
    "contact",
    "channel",
    "kind",
    "purpose",
    "status",
    "legal_basis",
    "consent_entry_id",
    "template",
    "template_version",
    "parts_estimated",
    "parts_reported",
    "created_at",
    "due_at",
    "sent_at",
    "final_at",
)


class MessageListSerializer(serializers.ModelSerializer):
    """A page of the log: what happened, not what was said (no content, no address)."""

    template = serializers.IntegerField(source="template_id", allow_null=True)

    class Meta:
        model = Message
        fields = LIST_FIELDS


class MessageDetailSerializer(MessageListSerializer):
    """One message with its content and timeline; reading it is recorded in the access log."""

    timeline = MessageEventSerializer(source="events", many=True)

    class Meta(MessageListSerializer.Meta):
        fields: tuple[str, ...] = (
            *LIST_FIELDS,
            "subject",
            "body",
            "to_address",
            "refusal_reasons",
            "last_error",
            "error_permanent",
            "provider",
            "provider_message_id",
            "timeline",
        )


# What the access log records as read when a message is opened.
CONTENT_FIELDS = ("subject", "body", "to_address")


class ActionInSerializer(serializers.Serializer):
    """A performed action reported by the clinic's own system (MSG-6)."""

    action = serializers.CharField(
        max_length=40,
        help_text="What the person did, as a short name: 1-40 lower-case letters, digits, '_' or "
        "'-' (appointment_booked). Reported twice for one message, it is recorded once.",
    )
    at = serializers.DateTimeField(
        required=False, help_text="When it happened (ISO 8601 with offset); now if left out."
    )


class ActionOutSerializer(serializers.Serializer):
    message = serializers.IntegerField(source="message_id", help_text="The message's id.")
    action = serializers.CharField(source="detail.action")
    at = serializers.DateTimeField(help_text="When the action happened.")
    recorded_at = serializers.DateTimeField(help_text="When it was first reported.")
