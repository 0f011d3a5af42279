from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carely.api import services
from carely.api.scopes import ALL_SCOPES, UnknownScope
from carely.audit.context import Actor, acting_as
from carely.orgs import selectors as org_selectors
from carely.orgs.management.commands._output import emit
from carely.orgs.models import Organisation
from carely.orgs.suspension import OrganisationSuspended


class Command(BaseCommand):
    help = "Create an API key for an organisation and print it once (it is stored only hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="Organisation slug.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes, from: {', '.join(ALL_SCOPES)}.",
        )
        parser.add_argument("--name", default="Command-line key")
        parser.add_argument(
            "--rate-limit", type=int, default=None, help="Requests per minute (default: platform)."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organisation = org_selectors.organisation_get_by_slug(slug=options["org"])
        except Organisation.DoesNotExist:
            raise CommandError(f"No organisation with slug {options['org']!r}") from None
        scopes = [s for s in options["scopes"].split(",") if s.strip()]
        try:
            with acting_as(Actor.system("create_api_key")):
                key, plaintext = services.api_key_create(
                    organisation=organisation,
                    name=options["name"],
                    scopes=scopes,
                    rate_limit_per_minute=options["rate_limit"],
                )
        except (UnknownScope, services.ApiKeyInvalid, OrganisationSuspended) as exc:
            raise CommandError(str(exc)) from None
        payload = {
            "id": key.pk,
            "key": plaintext,
            "prefix": key.prefix,
            "name": key.name,
            "organisation": organisation.slug,
            "scopes": key.scopes,
            "rate_limit_per_minute": key.rate_per_minute,
        }
        human = (
            f"API key {key.name!r} for {organisation.slug} (id {key.pk}), scopes "
            f"{', '.join(key.scopes)}:\n{plaintext}\n"
            "Store it now: it is kept only as a hash and cannot be shown again."
        )
        emit(self, payload, as_json=options["json"], human=human)
