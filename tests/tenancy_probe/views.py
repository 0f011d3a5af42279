from rest_framework import mixins, serializers

from carely.api.views import OrganisationScopedViewSet
from tests.tenancy_probe.models import ProbeRecord


class ProbeRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProbeRecord
        fields = ["id", "label"]


class ProbeRecordViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrganisationScopedViewSet,
):
    model = ProbeRecord
    serializer_class = ProbeRecordSerializer
    resource = "contacts"
