"""Staff pages of campaigns, mounted at ``/campaigns/``."""

from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("approvals/", views.approval_queue, name="approvals"),
    path("audience-count/", views.audience_count_json, name="audience_count"),
    path("template-preview/", views.template_preview_json, name="template_preview"),
    path("audiences/", views.audience_list, name="audience_list"),
    path("audiences/new/", views.audience_create, name="audience_create"),
    path("audiences/<int:audience_id>/", views.audience_edit, name="audience_edit"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/progress.json", views.campaign_progress_json, name="progress"),
    path("<int:campaign_id>/results/", views.campaign_results, name="results"),
    path("<int:campaign_id>/submit/", views.campaign_submit_view, name="submit"),
    path("<int:campaign_id>/withdraw/", views.campaign_withdraw_view, name="withdraw"),
    path("<int:campaign_id>/approve/", views.campaign_approve_view, name="approve"),
    path("<int:campaign_id>/send-back/", views.campaign_reject_view, name="reject"),
    path("<int:campaign_id>/pause/", views.campaign_pause_view, name="pause"),
    path("<int:campaign_id>/resume/", views.campaign_resume_view, name="resume"),
    path("<int:campaign_id>/cancel/", views.campaign_cancel_view, name="cancel"),
]
