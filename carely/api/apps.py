from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "carely.api"
    label = "api"
    verbose_name = "API"
