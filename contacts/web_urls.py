"""Contact list, detail, forms, restriction and export pages (the staff UI)."""

from django.urls import path

from contacts import views

urlpatterns = [
    path("", views.contact_list, name="list"),
    path("new/", views.contact_new, name="create"),
    path("<int:contact_id>/", views.contact_detail, name="detail"),
    path("<int:contact_id>/edit/", views.contact_edit, name="edit"),
    path("<int:contact_id>/restrict/", views.contact_restrict_view, name="restrict"),
    path(
        "<int:contact_id>/lift-restriction/",
        views.contact_lift_restriction_view,
        name="lift_restriction",
    ),
    path("<int:contact_id>/statement/", views.contact_statement, name="statement"),
    path("<int:contact_id>/export/", views.contact_export, name="export"),
]
