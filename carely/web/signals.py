"""Signal receivers of the web shell."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from carely.web.middleware import LANGUAGE_SESSION_KEY


def language_from_profile(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """At sign-in, use the person's saved language unless they just picked one on the login page."""
    if request is None or not hasattr(request, "session"):
        return
    if request.session.get(LANGUAGE_SESSION_KEY) in dict(settings.LANGUAGES):
        return
    if user.preferred_language in dict(settings.LANGUAGES):
        request.session[LANGUAGE_SESSION_KEY] = user.preferred_language
