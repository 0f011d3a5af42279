"""Staff pages for managing an organisation's API keys (mounted at /settings/api-keys/)."""

from django.urls import path  # noqa: F401

app_name = "api_keys"
urlpatterns: list = []
