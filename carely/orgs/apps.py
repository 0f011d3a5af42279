from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class OrgsConfig(AppConfig):
    name = "carely.orgs"
    label = "orgs"
    verbose_name = "Organisations"
    default = True


class PlatformAdminConfig(admin_apps.AdminConfig):
    """Replaces django.contrib.admin so that ``admin.site`` is the operators-only site."""

    default = False  # named explicitly in INSTALLED_APPS; never this module's default
    default_site = "carely.orgs.admin_site.PlatformAdminSite"
