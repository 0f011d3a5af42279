from django.apps import AppConfig
from django.db.backends.signals import connection_created


class AuditConfig(AppConfig):
    name = "carely.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from carely.audit import guards, signals

        connection_created.connect(guards.register_sqlite_functions, dispatch_uid="audit-sqlite")
        signals.connect()
