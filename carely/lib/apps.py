from django.apps import AppConfig


class LibConfig(AppConfig):
    name = "carely.lib"
    label = "carely_lib"
    verbose_name = "Carely helpers"

    def ready(self) -> None:
        from carely.lib import checks  # noqa: F401  (registers system checks)
