from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "carely.api"
    label = "api"
    verbose_name = "API"

    def ready(self) -> None:
        # Registers the OpenAPI security scheme for API keys with drf-spectacular.
        from carely.api import schema  # noqa: F401
