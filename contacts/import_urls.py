"""CSV import screens: upload, column mapping, progress, result (mounted at /contacts/import/)."""

from django.urls import URLPattern, path

from contacts import import_views as views

urlpatterns: list[URLPattern] = [
    path("", views.import_upload, name="import_upload"),
    path("<int:job_id>/columns/", views.import_mapping, name="import_mapping"),
    path("<int:job_id>/start/", views.import_start, name="import_start"),
    path("<int:job_id>/progress/", views.import_progress, name="import_progress"),
    path("<int:job_id>/status.json", views.import_status, name="import_status"),
    path("<int:job_id>/", views.import_result, name="import_result"),
    path("<int:job_id>/rejected.csv", views.import_rejected_csv, name="import_rejected_csv"),
]
