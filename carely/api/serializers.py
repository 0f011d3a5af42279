from __future__ import annotations

from rest_framework import serializers


class OrganisationOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class KeyOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()


class MeOutSerializer(serializers.Serializer):
    organisation = OrganisationOutSerializer()
    key = KeyOutSerializer()
    scopes = serializers.ListField(child=serializers.CharField())
