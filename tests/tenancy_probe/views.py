from collections.abc import Callable
from typing import ClassVar

from rest_framework import mixins, serializers

from carely.api.views import OrganisationScopedViewSet
from tests.tenancy_probe.models import ProbeRecord


class ProbeRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProbeRecord
        fields = ["id", "label"]


class ProbeRecordViewSet(
    OrganisationScopedViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    model = ProbeRecord
    serializer_class = ProbeRecordSerializer
    resource = "contacts"
    access_log_subject = "probe"
    # Test hook: called before saving, so a test can hold a request "in flight".
    on_create: ClassVar[Callable[[], None] | None] = None

    def perform_create(self, serializer):
        if type(self).on_create is not None:
            type(self).on_create()
        super().perform_create(serializer)
