"""CSV import screens: upload, column mapping, progress, result (filled in by the import work)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
