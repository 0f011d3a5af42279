"""Staff pages for one contact's consent, under /contacts/<id>/consents/."""

from django.urls import path

from consent import views

app_name = "consent"
urlpatterns = [
    path("", views.consent_history, name="history"),
    path("record/", views.consent_record_view, name="record"),
    path("objection/", views.objection_record_view, name="objection"),
    path(
        "objections/<int:objection_id>/grounds/",
        views.objection_grounds_view,
        name="grounds",
    ),
    path("receipt.json", views.receipt_json, name="receipt_json"),
    path("receipt.pdf", views.receipt_pdf_view, name="receipt_pdf"),
]
