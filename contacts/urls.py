"""Staff pages for contacts: the register (web_urls) and CSV imports (import_urls)."""

from django.urls import include, path

app_name = "contacts"
urlpatterns = [
    path("import/", include("contacts.import_urls")),
    path("", include("contacts.web_urls")),
]
