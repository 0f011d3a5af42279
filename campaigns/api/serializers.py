"""Shapes of ``/api/v1/campaigns/`` and a campaign's statistics (MSG-10).

The statistics are documented cell by cell: every count is an integer, or the string "<5" where
it is masked (1-4 people, or masked so another cell cannot be had by subtraction).
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Campaign
from campaigns.stats import MASK

_MASKED_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "enum": [MASK]},
    ],
    "description": f'A count, or "{MASK}" where it is masked (MSG-10).',
}


@extend_schema_field(_MASKED_SCHEMA)
class MaskedCountField(serializers.Field):
    """An integer, or "<5"; read only (statistics are never written)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        return value


def _count(help_text: str) -> MaskedCountField:
    return MaskedCountField(help_text=help_text)


class CampaignAudienceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CampaignProgressSerializer(serializers.Serializer):
    audience_total = serializers.IntegerField(
        help_text="Contacts the audience matched when materialisation began."
    )
    targeted = serializers.IntegerField(help_text="Contacts looked at so far.")
    queued = serializers.IntegerField(help_text="Messages written to the outbox so far.")


class CampaignSerializer(serializers.ModelSerializer[Campaign]):
    audience = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    channels = serializers.ListField(
        child=serializers.CharField(), help_text="Channels in order of preference."
    )

    class Meta:
        model = Campaign
        fields: ClassVar = [
            "id",
            "name",
            "purpose",
            "channels",
            "state",
            "schedule",
            "send_at",
            "send_until",
            "created_at",
            "approved_at",
            "started_at",
            "finished_at",
            "audience",
            "progress",
        ]
        read_only_fields = fields

    @extend_schema_field(CampaignAudienceSerializer(allow_null=True))
    def get_audience(self, obj: Campaign) -> dict[str, Any] | None:
        if obj.audience is None:
            return None
        return {"id": obj.audience.pk, "name": obj.audience.name}

    @extend_schema_field(CampaignProgressSerializer)
    def get_progress(self, obj: Campaign) -> dict[str, int]:
        return {
            "audience_total": obj.audience_total,
            "targeted": obj.targeted,
            "queued": obj.queued,
        }


class StatsCountsSerializer(serializers.Serializer):
    audience_total = _count("Contacts the audience matched when materialisation began.")
    targeted = _count("Contacts looked at (materialised so far).")
    excluded_total = _count(
        "Contacts not reached for a reason: never queued, or refused at dispatch."
    )
    queued = _count("Messages written to the outbox (one per contact reached).")
    waiting = _count("Messages queued, deferred or being sent right now.")
    held = _count("Messages held while the campaign is paused.")
    cancelled = _count("Messages cancelled before sending (campaign cancelled, withdrawal).")
    refused = _count("Messages refused at dispatch (see `excluded` for why).")
    failed = _count("Messages that failed before the provider accepted them.")
    sent = _count(
        "Messages handed to the provider: sent, delivered, undeliverable, expired or rejected."
    )
    delivered = _count("Messages the provider reported delivered.")
    undeliverable = _count("Messages undeliverable, expired, rejected or failed.")
    clicked = _count("Messages with at least one tracked link clicked.")
    conversions = _count("Messages with a performed action reported (appointment booked ...).")
    unsubscribed = _count(
        "Contacts who withdrew consent for the campaign's purpose themselves (unsubscribe "
        "link, STOP reply, preference page) within 30 days after their message was sent."
    )
    cost_segments = _count(
        "Segments charged for sent messages: the provider's parts where reported, else our "
        "estimate (an e-mail is one)."
    )


class StatsChannelSerializer(serializers.Serializer):
    queued = _count("Messages on this channel.")
    waiting = _count("Queued, deferred or being sent.")
    held = _count("Held while paused.")
    cancelled = _count("Cancelled before sending.")
    refused = _count("Refused at dispatch.")
    failed = _count("Failed before the provider accepted them.")
    sent = _count("Handed to the provider.")
    delivered = _count("Reported delivered.")
    undeliverable = _count("Undeliverable, expired, rejected or failed.")
    clicked = _count("With a tracked link clicked.")
    conversions = _count("With a performed action.")
    cost_segments = _count("Segments charged.")


class StatsFunnelStepSerializer(serializers.Serializer):
    step = serializers.ChoiceField(
        choices=["targeted", "queued", "sent", "delivered", "clicked", "converted"]
    )
    count = _count("Contacts or messages that reached this step.")


class StatsBucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Start of the bucket (UTC).")
    width = serializers.ChoiceField(
        choices=["hour", "day"],
        help_text="An hour for the first 48 hours from the start, a day after.",
    )
    sent = _count("Messages handed to the provider in this bucket.")
    delivered = _count("Delivery reports received in this bucket.")


class CampaignStatsSerializer(serializers.Serializer):
    """A campaign's statistics as aggregates that reveal no person (MSG-10)."""

    campaign = serializers.IntegerField(help_text="The campaign's id.")
    state = serializers.CharField(help_text="The campaign's state.")
    computed_at = serializers.DateTimeField(help_text="When these figures were counted.")
    started_at = serializers.DateTimeField(
        allow_null=True, help_text="When sending began; the delivery series starts here."
    )
    counts = StatsCountsSerializer()
    excluded = serializers.DictField(
        child=MaskedCountField(),
        help_text="Contacts not reached, by reason code (no_consent, withdrawn, suppressed, "
        "frequency_cap, ...): those never queued plus messages refused at dispatch, each under "
        "its most important reason.",
    )
    by_channel = serializers.DictField(
        child=StatsChannelSerializer(), help_text="The same counts per channel (sms, email ...)."
    )
    funnel = StatsFunnelStepSerializer(
        many=True, help_text="targeted → queued → sent → delivered → clicked → converted."
    )
    series = StatsBucketSerializer(many=True, help_text="Delivery over time, for a chart.")
