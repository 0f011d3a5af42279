"""Contact list, detail, forms and restriction pages (filled in by the staff UI work)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
