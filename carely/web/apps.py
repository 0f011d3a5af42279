from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "carely.web"
    label = "web"
    verbose_name = "Web UI"
