from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "carely.privacy"
    label = "privacy"
    verbose_name = "Privacy"
