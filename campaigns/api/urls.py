from django.urls import path
from rest_framework.routers import SimpleRouter

from campaigns.api.views import CampaignStatsView, CampaignViewSet

router = SimpleRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")

urlpatterns = [
    # The documented path has no trailing slash; with one it answers the same (undocumented).
    path("campaigns/<int:pk>/stats", CampaignStatsView.as_view(), name="campaign-stats"),
    path("campaigns/<int:pk>/stats/", CampaignStatsView.as_view(schema=None)),
    *router.urls,
]
