from django.apps import AppConfig


class PrivacyProbeConfig(AppConfig):
    """Test-only models that exercise encryption, blind indexes and the privacy registry."""

    name = "tests.privacy_probe"
    label = "privacy_probe"
    default_auto_field = "django.db.models.BigAutoField"
