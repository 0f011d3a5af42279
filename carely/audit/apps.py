from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "carely.audit"
    label = "audit"
    verbose_name = "Audit log"
