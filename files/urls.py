"""Staff pages for contact files, mounted at /files/ (CNT-5)."""

from django.urls import path

from files import views

app_name = "files"
urlpatterns = [
    path("contacts/<int:contact_id>/", views.contact_files, name="contact_files"),
    path("contacts/<int:contact_id>/upload", views.contact_file_upload, name="upload"),
    path(
        "contacts/<int:contact_id>/<int:file_id>/download",
        views.contact_file_download,
        name="download",
    ),
    path(
        "contacts/<int:contact_id>/<int:file_id>/delete",
        views.contact_file_remove,
        name="delete",
    ),
]
