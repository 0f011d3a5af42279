"""The public request form, mounted at ``/privacy-request/`` (no sign-in)."""

from django.urls import path

from dsr import public_views

app_name = "dsr_public"

urlpatterns = [
    # Before the clinic's slug: "platform" is the platform's own form, never a clinic.
    path("platform/", public_views.platform_form, name="platform"),
    path(
        "platform/<str:reference>/verify/",
        public_views.platform_verify,
        name="platform_verify",
    ),
    path("<slug:slug>/", public_views.request_form, name="form"),
    path("<slug:slug>/<str:reference>/verify/", public_views.verify, name="verify"),
]
