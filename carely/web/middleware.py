"""Web middleware: security headers, language from the session, idle timeout, the MFA gate.

Each one is small and exempts the same machine-facing paths (the key-authenticated API, health
probes, static files), which never carry a staff session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from carely.orgs.permissions import mfa_required_for

GetResponse = Callable[[HttpRequest], HttpResponse]

# Paths that never carry a staff session: API keys, probes, assets.
MACHINE_PREFIXES = ("/api/", "/healthz", "/readyz", "/static/")
# The API's browsable docs are a page for people, not a key-authenticated endpoint.
API_DOCS_PREFIX = "/api/docs/"

LANGUAGE_SESSION_KEY = "carely_language"
LAST_ACTIVITY_SESSION_KEY = "carely_last_activity"
AUTH_METHODS_SESSION_KEY = "account_authentication_methods"  # allauth's record of passed steps

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), interest-cohort=()"


def is_machine_path(path: str) -> bool:
    return path.startswith(MACHINE_PREFIXES) and not path.startswith(API_DOCS_PREFIX)


class SecurityHeadersMiddleware:
    """CSP and friends on every response: the UI loads nothing from another host (SEC-9)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.setdefault("Referrer-Policy", "same-origin")
        response.setdefault("X-Content-Type-Options", "nosniff")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class SessionLanguageMiddleware:
    """Use the language the person chose, kept in the session; never a language cookie (SEC-9)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = request.session.get(LANGUAGE_SESSION_KEY)
        if language in dict(settings.LANGUAGES):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


def remember_language(request: HttpRequest, language: str) -> bool:
    """Keep a supported language in the session (and on the person, when signed in)."""
    if language not in dict(settings.LANGUAGES):
        return False
    request.session[LANGUAGE_SESSION_KEY] = language
    user: Any = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.preferred_language != language:
        user.preferred_language = language
        user.save(update_fields=["preferred_language"])
    translation.activate(language)
    return True


def idle_minutes() -> int:
    return int(settings.SESSION_IDLE_TIMEOUT.total_seconds() // 60)


class IdleTimeoutMiddleware:
    """Sign a person out after SESSION_IDLE_TIMEOUT without a request (SEC-1).

    The last-activity time is rewritten at most once a minute: every write is a session save, and
    a minute of slack does not matter against a 30-minute limit.
    """

    REFRESH_SECONDS = 60

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_machine_path(request.path) or not request.user.is_authenticated:
            return self.get_response(request)
        now = time.time()
        last = request.session.get(LAST_ACTIVITY_SESSION_KEY)
        limit = settings.SESSION_IDLE_TIMEOUT.total_seconds()
        if isinstance(last, int | float) and now - last > limit:
            return self._sign_out(request)
        if not isinstance(last, int | float) or now - last >= self.REFRESH_SECONDS:
            request.session[LAST_ACTIVITY_SESSION_KEY] = now
        return self.get_response(request)

    def _sign_out(self, request: HttpRequest) -> HttpResponse:
        language = request.session.get(LANGUAGE_SESSION_KEY)
        logout(request)
        if language:
            request.session[LANGUAGE_SESSION_KEY] = language
        messages.info(
            request,
            _(
                "You were signed out after %(minutes)d minutes without activity, to protect "
                "patient data. Please sign in again."
            )
            % {"minutes": idle_minutes()},
        )
        return redirect_to_login(request.get_full_path())


def _mfa_exempt_prefixes() -> tuple[str, ...]:
    # The pages a person needs to set up or pass the second factor, or to leave.
    return (
        reverse("account_logout"),
        reverse("account_login"),
        reverse("account_reauthenticate"),
        reverse("mfa_index"),  # /accounts/2fa/: activation, recovery codes, reauthentication
        reverse("web:set_language"),
    )


def mfa_passed(request: HttpRequest) -> bool:
    records = request.session.get(AUTH_METHODS_SESSION_KEY)
    return isinstance(records, list) and any(
        isinstance(r, dict) and r.get("method") == "mfa" for r in records
    )


def _password_signed_in_at(request: HttpRequest) -> float | None:
    records = request.session.get(AUTH_METHODS_SESSION_KEY) or []
    times = [r.get("at") for r in records if isinstance(r, dict) and r.get("method") != "mfa"]
    numbers = [t for t in times if isinstance(t, int | float)]
    return min(numbers) if numbers else None


class MfaRequiredMiddleware:
    """People who must use a second factor (SEC-1) reach nothing else until they have.

    No authenticator yet: every page leads to the TOTP activation page. An authenticator but a
    session that never passed it (signed in before it was required, or a session from before the
    change): sign out and sign in again, which now asks for the code.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        if (
            not user.is_authenticated
            or is_machine_path(request.path)
            or mfa_passed(request)
            or not mfa_required_for(user=user, membership=getattr(request, "membership", None))
        ):
            return self.get_response(request)
        from allauth.mfa.models import Authenticator

        totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if request.path.startswith(_mfa_exempt_prefixes()):
            if totp is not None:
                self._credit_fresh_activation(request, totp)
            return self.get_response(request)
        if totp is None:
            return redirect("mfa_activate_totp")
        if self._credit_fresh_activation(request, totp):
            return self.get_response(request)
        logout(request)
        messages.info(request, _("Please sign in again with your authenticator code."))
        return redirect_to_login(request.get_full_path())

    @staticmethod
    def _credit_fresh_activation(request: HttpRequest, totp: Any) -> bool:
        """An authenticator activated in this very session proves the factor: the person just
        typed a valid code to activate it. Record that as allauth would after a login."""
        signed_in_at = _password_signed_in_at(request)
        if signed_in_at is None or totp.created_at.timestamp() < signed_in_at:
            return False
        records = list(request.session.get(AUTH_METHODS_SESSION_KEY) or [])
        records.append({"method": "mfa", "at": time.time(), "id": totp.pk, "type": "totp"})
        request.session[AUTH_METHODS_SESSION_KEY] = records
        return True
