"""Test URLs: the real ones plus the tenancy probe under /api/v1/probe/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from tests.tenancy_probe.views import ProbeRecordViewSet

router = SimpleRouter(trailing_slash=False)
router.register("records", ProbeRecordViewSet, basename="probe-record")

urlpatterns = [
    # Before carely.urls, whose /api/ catch-all would otherwise answer 404 for these.
    path("api/v1/probe/", include(router.urls)),
    path("", include("carely.urls")),
]
