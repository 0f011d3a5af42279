from django.apps import AppConfig


class FilesConfig(AppConfig):
    name = "files"
    label = "files"
    verbose_name = "Contact files"

    def ready(self) -> None:
        from files import signals  # noqa: F401  (connects the stored-file cleanup)
