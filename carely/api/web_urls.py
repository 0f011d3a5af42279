"""Staff pages for managing an organisation's API keys (mounted at /settings/api-keys/)."""

from django.urls import path

from carely.api import web_views

app_name = "api_keys"
urlpatterns = [
    path("", web_views.api_key_list_view, name="list"),
    path("new/", web_views.api_key_create_view, name="create"),
    path("<int:key_id>/revoke/", web_views.api_key_revoke_view, name="revoke"),
]
