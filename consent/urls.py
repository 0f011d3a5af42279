"""The patient's own pages (no sign-in): unsubscribe link, preferences, public consent form."""

from django.urls import path

from consent import public_views

app_name = "consent_public"
urlpatterns = [
    path("u/<str:token>/", public_views.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/preferences/", public_views.preferences, name="preferences"),
    path("c/<slug:slug>/", public_views.signup, name="signup"),
    path("c/<slug:slug>/confirm/<str:reference>/", public_views.signup_code, name="signup_code"),
]
