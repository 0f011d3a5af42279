from django.urls import path

from consent.api.views import ContactConsentViewSet

urlpatterns = [
    path(
        "contacts/<int:contact_id>/consents/",
        ContactConsentViewSet.as_view({"get": "list", "post": "create"}),
        name="contact-consents",
    ),
]
