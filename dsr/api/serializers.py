"""Shapes of ``/api/v1/dsr/``: a request as a DPO's system sees it, and what each action takes.

A request's representation holds what it is, where it stands and its timeline; it never echoes
the subject's e-mail, phone or name back (an integrating system already has them, and a key
with ``dsr:read`` alone should not become a way to read them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.utils import timezone
from rest_framework import serializers

from dsr.deadlines import days_left
from dsr.models import (
    DataSubjectRequest,
    Decision,
    DsrStep,
    ReplyChannel,
    RequestChannel,
    RequestType,
)


class StepSerializer(serializers.ModelSerializer[DsrStep]):
    class Meta:
        model = DsrStep
        fields: ClassVar = ["kind", "at", "actor_type", "actor_id", "data"]


class DsrSerializer(serializers.ModelSerializer[DataSubjectRequest]):
    due_at = serializers.SerializerMethodField(
        help_text="End of the due day (Europe/Ljubljana), ISO 8601."
    )
    days_left = serializers.SerializerMethodField(help_text="Negative when overdue.")
    overdue = serializers.SerializerMethodField()
    steps = StepSerializer(many=True, read_only=True)
    contact = serializers.IntegerField(source="contact_id", allow_null=True, read_only=True)
    complaint_of = serializers.IntegerField(
        source="complaint_of_id", allow_null=True, read_only=True
    )

    class Meta:
        model = DataSubjectRequest
        fields: ClassVar = [
            "id",
            "reference",
            "type",
            "channel",
            "state",
            "received_at",
            "due_on",
            "due_at",
            "days_left",
            "overdue",
            "extended_at",
            "contact",
            "verified_at",
            "verification_method",
            "decision",
            "decided_at",
            "fee_cents",
            "executed_at",
            "closed_at",
            "result",
            "complaint_of",
            "language",
            "reply_channel",
            "steps",
        ]

    def get_due_at(self, obj: DataSubjectRequest) -> str:
        end = dt.datetime.combine(obj.due_on, dt.time(23, 59, 59))
        return timezone.make_aware(end).isoformat()

    def get_days_left(self, obj: DataSubjectRequest) -> int:
        return days_left(obj.due_on, timezone.localdate())

    def get_overdue(self, obj: DataSubjectRequest) -> bool:
        return obj.is_open and obj.due_on < timezone.localdate()


class SubjectInSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True)
    external_id = serializers.CharField(required=False, allow_blank=True)
    contact = serializers.IntegerField(required=False)
    name = serializers.CharField(required=False, allow_blank=True)


class DsrInSerializer(serializers.Serializer):
    # Checked by dsr_receive together with the subject, so one answer names every bad field.
    type = serializers.CharField(help_text=f"One of: {', '.join(RequestType.values)}.")
    subject = SubjectInSerializer()
    channel = serializers.CharField(
        default=RequestChannel.API,
        help_text=f"How it reached you; one of: {', '.join(RequestChannel.values)}.",
    )
    received_at = serializers.DateTimeField(required=False)
    details = serializers.CharField(required=False, allow_blank=True, default="")
    language = serializers.ChoiceField(choices=["sl", "en"], required=False)
    reply_channel = serializers.ChoiceField(choices=ReplyChannel.values, required=False)


class VerifyInSerializer(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=["code", "attestation"],
        help_text="code: without `code` sends one to the address on file; with `code` checks it. "
        "attestation: a staff statement with evidence (multipart file `evidence`).",
    )
    channel = serializers.ChoiceField(choices=["email", "sms"], required=False)
    code = serializers.CharField(required=False, allow_blank=False, max_length=12)
    statement = serializers.CharField(required=False, allow_blank=True)
    evidence = serializers.FileField(required=False)


class RequestInfoInSerializer(serializers.Serializer):
    what = serializers.CharField()
    identity = serializers.BooleanField(
        default=False,
        help_text="True when the information is needed to identify the subject: the one-month "
        "clock starts again when it arrives.",
    )


class InfoReceivedInSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")
    received_at = serializers.DateTimeField(required=False)
    attachment = serializers.FileField(required=False)


class ConfirmSubjectInSerializer(serializers.Serializer):
    contact = serializers.IntegerField()


class ExtendInSerializer(serializers.Serializer):
    reason = serializers.CharField()


class DecideInSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.values)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    fee_cents = serializers.IntegerField(required=False, min_value=1)


class ExecuteInSerializer(serializers.Serializer):
    changes = serializers.DictField(
        required=False, help_text="Rectification: the corrected contact fields."
    )
    statement = serializers.CharField(
        required=False, help_text="Rectification: a supplementary statement (DSR-8)."
    )
    objection = serializers.ChoiceField(
        choices=["direct_marketing", "legitimate_interest"], required=False
    )
    purposes = serializers.ListField(
        child=serializers.SlugField(), required=False, help_text="Withdrawal: purposes (all)."
    )
    reason = serializers.CharField(required=False, help_text="Restriction: the reason.")
    push_url = serializers.URLField(
        required=False, help_text="Portability: another controller's HTTPS endpoint."
    )


class CloseInSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ComplaintInSerializer(serializers.Serializer):
    details = serializers.CharField()
    received_at = serializers.DateTimeField(required=False)


def clean_params(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}
