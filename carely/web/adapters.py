"""allauth and axes glue: closed sign-up, one neutral login error, the username axes counts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

# Whatever was wrong (unknown e-mail, wrong password, inactive account) the person reads the same
# words, so the form cannot be used to find out who has an account (SEC-1).
NEUTRAL_LOGIN_ERROR = _(
    "That e-mail address and password do not match an account. Please try again."
)


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_password_mismatch": NEUTRAL_LOGIN_ERROR,
        "username_password_mismatch": NEUTRAL_LOGIN_ERROR,
        "account_inactive": NEUTRAL_LOGIN_ERROR,
        "invalid_login": NEUTRAL_LOGIN_ERROR,
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Accounts are personal and created by an organisation admin or an operator, never by
        # self-service sign-up.
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        """Setting up a first authenticator right after the password sign-in (which the MFA gate
        forces) needs no second password prompt; changing an older one still does."""
        if app == "allauth.mfa" and _first_factor_setup_after_fresh_sign_in():
            return False
        return super().is_reauthentication_required(app=app, **kwargs)


def _first_factor_setup_after_fresh_sign_in() -> bool:
    from allauth.account import app_settings as account_settings
    from allauth.core import context
    from allauth.mfa.models import Authenticator

    request = context.request
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    records = request.session.get("account_authentication_methods") or []
    times = [r.get("at") for r in records if isinstance(r, dict) and r.get("method") == "password"]
    latest = max((t for t in times if isinstance(t, int | float)), default=None)
    if latest is None or time.time() - latest >= account_settings.REAUTHENTICATION_TIMEOUT:
        return False
    # Only while every authenticator the person has was created in this sign-in: seeing the
    # recovery codes just generated is part of the same setup.
    signed_in_at = datetime.fromtimestamp(latest, tz=UTC)
    return not Authenticator.objects.filter(user=user, created_at__lt=signed_in_at).exists()


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str | None:
    """The e-mail axes counts failures against: allauth passes it as ``email``; the form field is
    ``login``. Lower-cased so that "Anna@X" and "anna@x" share one counter."""
    value = None
    if credentials:
        value = credentials.get("email") or credentials.get("login")
    if not value:
        value = request.POST.get("login") if request.method == "POST" else None
    return str(value).strip().lower() if value else None
