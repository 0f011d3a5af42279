"""Suspend an organisation for non-payment, or lift it (TEN-3), from scripts or a shell."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carely.orgs import services
from carely.orgs.management.commands._output import emit
from carely.orgs.models import Organisation


class Command(BaseCommand):
    help = "Suspend an organisation (reads stay, writes and sends stop) or lift the suspension."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organisation slug")
        parser.add_argument("--reason", default="", help="shown to the clinic's staff")
        parser.add_argument("--lift", action="store_true", help="lift the suspension instead")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organisation = Organisation.objects.get(slug=options["org"])
        except Organisation.DoesNotExist as exc:
            raise CommandError(f"No organisation has the slug {options['org']!r}") from exc
        if options["lift"]:
            organisation = services.organisation_unsuspend(organisation=organisation)
        else:
            if not options["reason"].strip():
                raise CommandError("Give --reason: the clinic's staff see it on every refusal")
            organisation = services.organisation_suspend(
                organisation=organisation, reason=options["reason"]
            )
        emit(
            self,
            {
                "id": organisation.pk,
                "slug": organisation.slug,
                "suspended": organisation.is_suspended,
                "suspended_at": organisation.suspended_at.isoformat()
                if organisation.suspended_at
                else None,
                "reason": organisation.suspension_reason,
            },
            as_json=options["json"],
            human=f"{organisation.slug}: "
            + ("suspended" if organisation.is_suspended else "active, not suspended"),
        )
