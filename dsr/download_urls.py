"""The subject's download link: ``/dsr/download/<token>/`` (included by carely/urls.py)."""

from django.urls import path

from dsr import downloads

urlpatterns = [
    path("<str:token>/", downloads.artifact_download, name="dsr-download"),
]
