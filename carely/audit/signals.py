"""Sign-in events into the platform's audit chain (SEC-4).

Signing in is an act on a personal account, not on one clinic's data, so it goes to the platform
chain; the person may belong to several clinics. A failed attempt records a keyed hash of the
login name that was typed, never the name itself: enough to see repeated attempts on one account.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import signals as auth_signals

from carely.audit.context import ANONYMOUS, Actor
from carely.audit.services import audit_record


def _login_fingerprint(credentials: dict[str, Any]) -> str:
    from carely.lib.keyed_hash import keyed_hash

    typed = str(credentials.get("email") or credentials.get("username") or "").strip().lower()
    return keyed_hash(typed, purpose="login") if typed else ""


def on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(
        action="auth.login", object_type="user", object_id=user.pk, actor=Actor.user(user.pk)
    )


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(
            action="auth.logout", object_type="user", object_id=user.pk, actor=Actor.user(user.pk)
        )


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any
) -> None:
    audit_record(
        action="auth.login_failed",
        details={"login_hash": _login_fingerprint(credentials)},
        actor=ANONYMOUS,
    )


def on_locked_out(sender: Any, request: Any = None, username: str = "", **kwargs: Any) -> None:
    audit_record(
        action="auth.locked_out",
        details={"login_hash": _login_fingerprint({"email": username})},
        actor=ANONYMOUS,
    )


def connect() -> None:
    from axes.signals import user_locked_out

    auth_signals.user_logged_in.connect(on_logged_in, dispatch_uid="audit-login")
    auth_signals.user_logged_out.connect(on_logged_out, dispatch_uid="audit-logout")
    auth_signals.user_login_failed.connect(on_login_failed, dispatch_uid="audit-login-failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="audit-locked-out")
