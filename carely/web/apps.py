from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "carely.web"
    label = "web"
    verbose_name = "Web UI"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from carely.web.signals import language_from_profile

        user_logged_in.connect(language_from_profile, dispatch_uid="carely.web.language")
