from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "carely.privacy"
    label = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        # Each app's privacy.py declares its models in the registry, found like admin.py.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("privacy")
