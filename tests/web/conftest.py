"""Web-shell fixtures: a TOTP helper and Debian's chromium for the browser test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Browser tests also save their screenshots here, for a person to look at.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def browser_signed_in(page, live_server, user) -> list[str]:
    """Sign ``user`` in for the Playwright ``page`` (the test client's session cookie, so no
    second factor is typed) and collect Content Security Policy complaints from the console:
    a page that trips the CSP fails its test."""
    from django.conf import settings
    from django.test import Client

    from tests.conftest import login

    client = Client()
    login(client, user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    complaints: list[str] = []
    page.on(
        "console",
        lambda m: complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return complaints


def totp_code(secret: str, at: float | None = None) -> str:
    """The six-digit code an authenticator app would show for ``secret`` right now."""
    from allauth.mfa import app_settings
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    counter = int(at if at is not None else time.time()) // app_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, counter))


def give_totp(user) -> str:
    """Activate a real allauth TOTP authenticator for ``user``; returns its secret."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (run `make chromium`)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
    }
