"""Staff pages of data-subject requests, mounted at ``/dsr/``."""

from django.urls import path

from dsr import views

app_name = "dsr"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("platform/", views.platform_queue, name="platform_queue"),
    path("new/", views.new, name="new"),
    path("<int:request_id>/", views.detail, name="detail"),
    path("<int:request_id>/confirm-subject/", views.confirm_subject, name="confirm_subject"),
    path("<int:request_id>/code/send/", views.code_send, name="code_send"),
    path("<int:request_id>/code/check/", views.code_check, name="code_check"),
    path("<int:request_id>/attest/", views.attest, name="attest"),
    path("<int:request_id>/request-info/", views.request_info, name="request_info"),
    path("<int:request_id>/info-received/", views.info_received, name="info_received"),
    path("<int:request_id>/extend/", views.extend, name="extend"),
    path("<int:request_id>/decide/", views.decide, name="decide"),
    path("<int:request_id>/execute/", views.execute, name="execute"),
    path("<int:request_id>/close/", views.close, name="close"),
    path("<int:request_id>/complaint/", views.complaint, name="complaint"),
    path("<int:request_id>/forward/", views.forward, name="forward"),
    path("<int:request_id>/notices/<int:notice_id>/sent/", views.notice_sent, name="notice_sent"),
    path(
        "<int:request_id>/attachments/<int:attachment_id>/",
        views.attachment_download,
        name="attachment",
    ),
    path("<int:request_id>/evidence/<int:artifact_id>/", views.evidence_download, name="evidence"),
]

# Every action URL of one request, for the tests' organisation-boundary sweep.
ACTION_NAMES = (
    "confirm_subject",
    "code_send",
    "code_check",
    "attest",
    "request_info",
    "info_received",
    "extend",
    "decide",
    "execute",
    "close",
    "complaint",
    "forward",
)
