"""``/webhooks/``: what providers call (messaging.webhooks). No session, no CSRF, no login: each
endpoint authenticates the provider itself."""

from django.urls import path

from messaging import webhooks

app_name = "webhooks"

urlpatterns = [
    path("infobip/<str:token>/reports/", webhooks.infobip_reports, name="infobip_reports"),
    path("infobip/<str:token>/inbound/", webhooks.infobip_inbound, name="infobip_inbound"),
    path("ses/<str:token>/", webhooks.ses_notifications, name="ses"),
]
