from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "carely.orgs"
    label = "orgs"
    verbose_name = "Organisations"
