"""Staff pages of messaging: ``/messages/`` (log, records, templates) and, mounted under a
contact's address, ``/contacts/<id>/messages/`` (that contact's log and a one-off message)."""

from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("", views.message_log, name="log"),
    path("<int:message_id>/", views.message_detail, name="message_detail"),
    path("<int:message_id>/content/", views.message_content, name="message_content"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/new/", views.template_create, name="template_create"),
    path("templates/<int:template_id>/", views.template_detail, name="template_detail"),
    path(
        "templates/<int:template_id>/new-version/",
        views.template_new_version,
        name="template_new_version",
    ),
    path("settings/transliteration/", views.transliteration_set, name="transliteration"),
    path("settings/api-free-text/", views.api_free_text_update, name="api_free_text"),
    path("settings/frequency-cap/", views.marketing_cap_update, name="frequency_cap"),
]

contact_urlpatterns = (
    [
        path("", views.contact_messages, name="list"),
        path("send/", views.contact_send, name="send"),
    ],
    "contact_messages",
)
