"""Contact file API shapes (CNT-5)."""

from __future__ import annotations

from typing import ClassVar

from django.urls import reverse
from rest_framework import serializers

from files.models import ContactFile, FileKind


class ContactFileSerializer(serializers.ModelSerializer[ContactFile]):
    name = serializers.CharField(source="original_name", read_only=True)
    content_url = serializers.SerializerMethodField()

    class Meta:
        model = ContactFile
        fields: ClassVar = [
            "id",
            "contact",
            "kind",
            "name",
            "content_type",
            "size",
            "sha256",
            "uploaded_at",
            "content_url",
        ]
        read_only_fields = fields

    def get_content_url(self, obj: ContactFile) -> str:
        return reverse("api:file-content", args=[obj.pk])


class ContactFileUploadSerializer(serializers.Serializer[None]):
    kind = serializers.ChoiceField(choices=FileKind.choices)
    file = serializers.FileField(
        help_text="The file, as multipart/form-data. Its type is checked by content."
    )
