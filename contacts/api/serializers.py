"""Contact API shapes. Input is parsed here for types only; the rules of a valid contact live in
``contacts.validation`` (the same for the UI and imports)."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.utils import timezone
from rest_framework import serializers

from contacts.models import Contact, ContactChange, Gender, RelationshipStatus, Tag
from contacts.selectors import contact_tag_names

CONTACT_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "external_id",
    "email",
    "phone",
    "preferred_language",
    "address",
    "source",
    "relationship_status",
    "relationship_started_at",
    "relationship_ended_at",
)


class ContactSerializer(serializers.ModelSerializer[Contact]):
    restricted = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields: ClassVar = [
            "id",
            *CONTACT_FIELDS,
            "source_kind",
            "guardian",
            "is_minor",
            "restricted",
            "tags",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_restricted(self, obj: Contact) -> bool:
        return obj.is_restricted

    def get_tags(self, obj: Contact) -> list[str]:
        return contact_tag_names(obj)


def _tags() -> serializers.ListField:
    # Names are checked by the service (contacts.services.tag_names_clean), which words each
    # problem with the tag's name; here only "a list of strings".
    return serializers.ListField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        help_text="The contact's tags; sending the list replaces them all. Names are 1 to 40 "
        "characters without commas; case does not matter (“Diabetes” is the tag “diabetes” if "
        "that exists); a name the organisation does not have yet becomes a new tag.",
    )


def _text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=True, **kwargs
    )


def _date(**kwargs: Any) -> serializers.DateField:
    return serializers.DateField(required=False, allow_null=True, **kwargs)


class ContactInSerializer(serializers.Serializer[Any]):
    first_name = _text()
    last_name = _text()
    birth_date = _date()
    gender = serializers.ChoiceField(
        choices=Gender.choices, required=False, allow_blank=True, allow_null=True
    )
    external_id = _text(help_text="Your own id for the person (customer number).")
    email = _text()
    phone = _text(
        help_text="Any common form; national numbers are read in the organisation's default "
        "region and stored in E.164 (+38641123456)."
    )
    preferred_language = _text(help_text="A language code such as sl, en or de.")
    address = _text()
    source = _text(help_text="Where and how the data was collected.")  # type: ignore[assignment]
    relationship_status = serializers.ChoiceField(
        choices=RelationshipStatus.choices, required=False, allow_null=True
    )
    relationship_started_at = _date()
    relationship_ended_at = _date()
    guardian = serializers.IntegerField(
        required=False, allow_null=True, help_text="Id of the parent or guardian's contact."
    )


class ContactCreateSerializer(ContactInSerializer):
    tags = _tags()


class ContactPatchSerializer(ContactInSerializer):
    tags = _tags()
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        write_only=True,
        help_text="Why the record is changed; kept in its rectification history.",
    )


class BulkUpsertInSerializer(serializers.Serializer[Any]):
    contacts = serializers.ListField(
        child=ContactInSerializer(),
        help_text="Up to 1,000 contacts, matched to existing ones on external_id, then email, "
        "then phone. Blank values never erase what is stored.",
    )


class RowErrorSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    message = serializers.CharField()


class RowResultSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "rejected"])
    id = serializers.IntegerField(allow_null=True)
    errors = RowErrorSerializer(many=True)  # type: ignore[assignment]


class BulkUpsertOutSerializer(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = RowResultSerializer(many=True)


class RestrictInSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        max_length=500,
        trim_whitespace=True,
        help_text="Why the contact is restricted, for example the data-subject request number.",
    )


class LiftRestrictionInSerializer(serializers.Serializer[Any]):
    informed_at = serializers.DateTimeField(
        help_text="When the person was told the restriction will be lifted (ISO 8601); "
        "not in the future."
    )
    informed_how = serializers.CharField(
        max_length=200,
        trim_whitespace=True,
        help_text="How the person was told, for example “e-mail to the address on file”.",
    )

    def validate_informed_at(self, value: dt.datetime) -> dt.datetime:
        if value > timezone.now():
            raise serializers.ValidationError("The time the person was informed is in the future.")
        return value


class RestrictionStateSerializer(serializers.ModelSerializer[Contact]):
    restricted = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields: ClassVar = [
            "id",
            "restricted",
            "restricted_at",
            "restriction_lifted_at",
            "restriction_lift_informed_at",
            "restriction_lift_informed_how",
        ]
        read_only_fields = fields

    def get_restricted(self, obj: Contact) -> bool:
        return obj.is_restricted


class StatementInSerializer(serializers.Serializer[Any]):
    statement = serializers.CharField(
        trim_whitespace=True,
        help_text="The supplementary statement that completes the record (DSR-8).",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        trim_whitespace=True,
        help_text="Why it is added, for example the data-subject request number.",
    )


class StatementOutSerializer(serializers.ModelSerializer[ContactChange]):
    class Meta:
        model = ContactChange
        fields: ClassVar = ["id", "contact", "statement", "reason", "created_at"]
        read_only_fields = fields


class TagSerializer(serializers.ModelSerializer[Tag]):
    contact_count = serializers.IntegerField(
        read_only=True, help_text="How many of the organisation's contacts carry the tag."
    )

    class Meta:
        model = Tag
        fields: ClassVar = ["id", "name", "contact_count", "created_at"]
        read_only_fields = fields
