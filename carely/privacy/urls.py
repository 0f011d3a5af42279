from django.urls import path

from carely.privacy import views

app_name = "privacy"
urlpatterns = [
    path("records/", views.records, name="records"),
    path("records/purposes/<int:purpose_id>/", views.purpose_edit, name="purpose_edit"),
    path("records/platform/", views.platform_records, name="platform_records"),
    path(
        "records/platform/purposes/<int:purpose_id>/",
        views.platform_purpose_edit,
        name="platform_purpose_edit",
    ),
]
