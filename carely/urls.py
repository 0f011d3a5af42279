from django.contrib import admin
from django.urls import include, path

from campaigns.public_views import click_redirect as campaign_click_redirect
from carely.web import health
from messaging.web_urls import contact_urlpatterns as contact_message_urls

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("accounts/", include("allauth.urls")),
    path("platform/admin/", admin.site.urls),
    path("api/", include("carely.api.urls")),
    path("audit/", include("carely.audit.urls")),
    path("privacy/", include("carely.privacy.urls")),
    # Before contacts/: the consent pages of one contact live under its address.
    path("contacts/<int:contact_id>/consents/", include("consent.web_urls")),
    path("contacts/<int:contact_id>/messages/", include(contact_message_urls)),
    path("contacts/", include("contacts.urls")),
    path("files/", include("files.urls")),
    path("messages/", include("messaging.web_urls")),
    path("campaigns/", include("campaigns.web_urls")),
    # The subject's copy of an access or portability response: the link is the secret.
    path("dsr/download/", include("dsr.download_urls")),
    path("dsr/", include("dsr.web_urls")),
    # The public request form (DSR-1): no account; per organisation, and one for the platform.
    path("privacy-request/", include("dsr.public_urls")),
    path("settings/api-keys/", include("carely.api.web_urls")),
    # What providers call (Infobip reports and replies, SES via SNS); each authenticates itself.
    path("webhooks/", include("messaging.webhook_urls")),
    # The patient's own pages: /u/<token>/ (unsubscribe, preferences), /c/<slug>/ (sign-up).
    path("r/<str:token>/", campaign_click_redirect, name="campaigns_click"),
    path("", include("consent.urls")),
    path("", include("carely.web.urls")),
]
