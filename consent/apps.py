from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


def _seed_new_organisation(sender: Any, instance: Any, created: bool, raw: bool, **kw: Any) -> None:
    # A receiver instead of a call in organisation_create: organisations are also created by
    # factories, the admin and fixtures, and every one of them needs its purposes.
    if created and not raw:
        from consent.seeding import purposes_seed

        purposes_seed(instance.pk)


class ConsentConfig(AppConfig):
    name = "consent"
    label = "consent"
    verbose_name = "Consent"

    def ready(self) -> None:
        from carely.orgs.models import Organisation

        post_save.connect(
            _seed_new_organisation,
            sender=Organisation,
            dispatch_uid="consent.seed_new_organisation",
        )
