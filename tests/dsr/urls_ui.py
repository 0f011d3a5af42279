"""Test URLs for the DSR pages until carely/urls.py mounts them: the pages first, then the
project's own (which may already include them; the first match wins either way)."""

from django.urls import include, path

urlpatterns = [
    path("dsr/", include("dsr.web_urls")),
    path("privacy-request/", include("dsr.public_urls")),
    path("", include("tests.urls")),
]
