"""``/api/v1/campaigns/``: a clinic's campaigns and their statistics, read only (MSG-10).

Scope ``campaigns:read``; another organisation's campaign is a 404 (TEN-1). The statistics are
the masked aggregates of ``campaigns.stats`` (no cell of 1-4 people), so a reporting key with
this scope alone learns nothing about any one patient.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api.serializers import CampaignSerializer, CampaignStatsSerializer
from campaigns.models import Campaign, State
from campaigns.stats import campaign_stats
from carely.api.views import OrganisationScopedViewSet, request_organisation

_FILTERS = [
    OpenApiParameter("state", OpenApiTypes.STR, enum=State.values, description="Only this state."),
]


class CampaignViewSet(OrganisationScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """A clinic's campaigns, newest first."""

    model = Campaign
    serializer_class = CampaignSerializer
    resource = "campaigns"
    http_method_names = ["get", "head", "options"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().select_related("audience")

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        if self.action != "list":
            return queryset
        state = self.request.query_params.get("state")
        if state:
            if state not in State.values:
                raise exceptions.ValidationError(
                    {"state": [f"“{state[:40]}” is not one of: {', '.join(State.values)}."]}
                )
            queryset = queryset.filter(state=state)
        return queryset

    @extend_schema(parameters=_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class CampaignStatsView(APIView):
    """``GET /api/v1/campaigns/{id}/stats``: one campaign's statistics, masked (MSG-10)."""

    required_scopes: ClassVar = {"GET": "campaigns:read"}

    @extend_schema(
        operation_id="campaigns_stats_retrieve",
        responses=CampaignStatsSerializer,
        description="A campaign's statistics as aggregates: every count of 1 to 4 is the "
        'string "<5" (0 stays 0), and where a group of cells adds up to a total shown '
        "elsewhere and only one cell was masked, a second one is too, so no masked cell can "
        "be worked out by subtraction. Counted when asked (a fixed number of queries).",
    )
    def get(self, request: Request, pk: int) -> Response:
        organisation = request_organisation(request)
        campaign = Campaign.objects.for_organisation(organisation).filter(pk=pk).first()
        if campaign is None:
            raise exceptions.NotFound(f"No campaign {pk} in your organisation.")
        stats = campaign_stats(campaign)
        return Response(CampaignStatsSerializer(stats.masked()).data)
