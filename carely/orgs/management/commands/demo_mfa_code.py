"""Print the current TOTP code of a demo person, for trying MFA without an authenticator app."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from carely.orgs.management.commands._output import emit


class Command(BaseCommand):
    help = "Embedded default only: print the current six-digit code for a demo login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        from allauth.mfa import app_settings
        from allauth.mfa.models import Authenticator
        from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
        from allauth.mfa.utils import decrypt

        if settings.PRODUCTION:
            raise CommandError("demo_mfa_code only runs on the embedded default")
        email = options["email"].strip().lower()
        if not email.endswith("@demo.carely.test"):
            raise CommandError("Only the demo logins printed by bootstrap_demo are supported")
        row = Authenticator.objects.filter(user__email=email, type=Authenticator.Type.TOTP).first()
        if row is None:
            raise CommandError(f"{email} has no authenticator; run `manage.py bootstrap_demo`")
        now = int(time.time())
        code = format_hotp_value(
            hotp_value(decrypt(row.data["secret"]), now // app_settings.TOTP_PERIOD)
        )
        valid_for = app_settings.TOTP_PERIOD - now % app_settings.TOTP_PERIOD
        emit(
            self,
            {"email": email, "code": code, "valid_for_seconds": valid_for},
            as_json=options["json"],
            human=f"{code} (valid for {valid_for}s more)",
        )
