from django.urls import path

from files.api.views import ContactFileListViewSet, ContactFileViewSet

urlpatterns = [
    path(
        "contacts/<int:contact_id>/files/",
        ContactFileListViewSet.as_view({"get": "list", "post": "upload"}),
        name="contact-files",
    ),
    path("files/<int:pk>/", ContactFileViewSet.as_view({"get": "retrieve"}), name="file-detail"),
    path(
        "files/<int:pk>/content",
        ContactFileViewSet.as_view({"get": "content"}),
        name="file-content",
    ),
]
