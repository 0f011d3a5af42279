"""Create (once) the demo organisation and one person per role, then print how to sign in.

Only for the embedded default: the passwords are kept in var/demo-credentials.json (mode 0600) so
that every `make run` can print them again. Refused when CARELY_MODE=production.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from carely.orgs import services
from carely.orgs.management.commands._output import emit
from carely.orgs.models import Organisation, User
from carely.orgs.roles import PlatformRole, Role

DEMO_SLUG = "demo-clinic"
DEMO_PEOPLE = [
    # email, clinic role, platform role
    ("staff@demo.carely.test", Role.STAFF, PlatformRole.NONE),
    ("admin@demo.carely.test", Role.ORG_ADMIN, PlatformRole.NONE),
    ("dpo@demo.carely.test", Role.DPO, PlatformRole.NONE),
    ("operator@demo.carely.test", None, PlatformRole.OPERATOR),
    ("platform-dpo@demo.carely.test", None, PlatformRole.PLATFORM_DPO),
]


def _credentials_path():
    return settings.VAR_DIR / "demo-credentials.json"


def _load_credentials() -> dict[str, dict[str, Any]]:
    path = _credentials_path()
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def _save_credentials(data: dict[str, dict[str, Any]]) -> None:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)


def _ensure_mfa(user: User, known: dict[str, Any]) -> dict[str, Any]:
    """Give a demo person TOTP and recovery codes; return what they need to pass the MFA step."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = known.get("totp_secret")
    has_totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    if not has_totp or not secret:
        Authenticator.objects.filter(user=user).delete()
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
        RecoveryCodes.activate(user)
    codes_row = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    unused = RecoveryCodes(codes_row).get_unused_codes()
    return {
        "totp_secret": secret,
        "otpauth_uri": f"otpauth://totp/Carely%20PEP:{user.email}?secret={secret}&issuer=Carely%20PEP",
        "recovery_code": unused[0] if unused else None,
    }


class Command(BaseCommand):
    help = "Create the demo organisation with one user per role (once) and print their logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the logins as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "bootstrap_demo only runs on the embedded default, not in production"
            )
        credentials = _load_credentials()
        with transaction.atomic():
            organisation = Organisation.objects.filter(slug=DEMO_SLUG).first()
            created = organisation is None
            if organisation is None:
                organisation = services.organisation_create(
                    name="Demo Clinic", slug=DEMO_SLUG, activation_date=timezone.localdate()
                )
            people = []
            for email, role, platform_role in DEMO_PEOPLE:
                known = credentials.get(email, {})
                user = User.objects.filter(email=email).first()
                password = known.get("password")
                if user is None:
                    password = secrets.token_urlsafe(12)
                    user = services.user_get_or_create(email=email, password=password)
                elif not password or not user.check_password(password):
                    # The credentials file was lost or the password changed: reset to a new one.
                    password = secrets.token_urlsafe(12)
                    user.set_password(password)
                    user.save(update_fields=["password"])
                if platform_role:
                    user.platform_role = platform_role
                    user.is_staff = platform_role == PlatformRole.OPERATOR
                    user.save(update_fields=["platform_role", "is_staff"])
                if role:
                    services.membership_create(organisation=organisation, user=user, role=role)
                entry: dict[str, Any] = {
                    "email": email,
                    "password": password,
                    "role": role or platform_role,
                }
                if role in (Role.ORG_ADMIN, Role.DPO) or platform_role:
                    entry.update(_ensure_mfa(user, known))
                credentials[email] = entry
                people.append(entry)
        _save_credentials(credentials)

        payload = {
            "organisation": {"id": organisation.pk, "slug": organisation.slug, "created": created},
            "login_url": "http://127.0.0.1:8000/accounts/login/",
            "users": people,
        }
        lines = [
            f"Demo organisation: {organisation.name} (slug {organisation.slug})",
            "Sign in at http://127.0.0.1:8000/accounts/login/ with:",
        ]
        for p in people:
            lines.append(f"  {p['role']:<13} {p['email']:<32} password {p['password']}")
            if p.get("totp_secret"):
                lines.append(f"  {'':<13} MFA: TOTP secret {p['totp_secret']} (authenticator app)")
                lines.append(
                    f"  {'':<13}      or recovery code {p['recovery_code']}, or the current code"
                    f" from: .venv/bin/python manage.py demo_mfa_code {p['email']}"
                )
        emit(self, payload, as_json=options["json"], human="\n".join(lines))
