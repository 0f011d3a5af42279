from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from carely.api.errors import api_not_found
from carely.api.views import MeView

app_name = "api"

# The schema and its UI are public documentation: no key, no throttle.
_public = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}

urlpatterns = [
    path("v1/me", MeView.as_view(), name="me"),
    path("v1/", include("contacts.api.urls")),
    path("v1/", include("files.api.urls")),
    path("v1/", include("consent.api.urls")),
    path("v1/", include("messaging.api.urls")),
    path("v1/", include("campaigns.api.urls")),
    path("v1/", include("dsr.api.urls")),
    path("schema/", SpectacularAPIView.as_view(**_public), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", **_public),
        name="docs",
    ),
    # Last: any other path under /api/ answers a problem+json 404, not the HTML page.
    re_path(r"^.*$", api_not_found, name="not-found"),
]
