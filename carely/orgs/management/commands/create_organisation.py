from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from carely.orgs import services
from carely.orgs.management.commands._output import emit
from carely.orgs.roles import Role


class Command(BaseCommand):
    help = "Create an organisation with a contract and its first organisation admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--slug", default=None)
        parser.add_argument(
            "--activation-date",
            default=None,
            help="Contract activation date, YYYY-MM-DD (default: today).",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["admin_email"].strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"--admin-email {email!r} is not a valid e-mail address") from None
        activation = timezone.localdate()
        if options["activation_date"]:
            try:
                activation = dt.date.fromisoformat(options["activation_date"])
            except ValueError:
                raise CommandError("--activation-date must look like 2026-01-31") from None

        from carely.orgs.models import User

        with transaction.atomic():
            try:
                organisation = services.organisation_create(
                    name=options["name"], slug=options["slug"], activation_date=activation
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            existing = User.objects.filter(email__iexact=email).exists()
            # A new admin gets a one-off password to sign in and set up MFA; an existing person
            # keeps their own credentials.
            password = None if existing else secrets.token_urlsafe(12)
            user = services.user_get_or_create(email=email, password=password)
            services.membership_create(organisation=organisation, user=user, role=Role.ORG_ADMIN)

        payload = {
            "id": organisation.pk,
            "slug": organisation.slug,
            "name": organisation.name,
            "contract_activation_date": activation.isoformat(),
            "admin": {"id": user.pk, "email": user.email, "temporary_password": password},
        }
        human = f"Created {organisation.name} (id {organisation.pk}, slug {organisation.slug}).\n"
        human += f"Organisation admin: {user.email}"
        human += f" with temporary password {password}" if password else " (existing account)"
        emit(self, payload, as_json=options["json"], human=human)
