"""Staff web shell: dashboard, language and organisation switches, lockout and error pages."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from carely.orgs import selectors
from carely.orgs.middleware import SESSION_KEY
from carely.orgs.permissions import permissions_for
from carely.web.context_processors import nav_links
from carely.web.middleware import remember_language


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    membership = getattr(request, "membership", None)
    user: Any = request.user
    context = {
        "membership": membership,
        "organisation": getattr(request, "organisation", None),
        "platform_role_label": user.get_platform_role_display() if user.platform_role else "",
        "links": [link for link in nav_links(request) if link["name"] != "dashboard"],
        "has_permissions": bool(permissions_for(user=user, membership=membership)),
    }
    return render(request, "web/dashboard.html", context)


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@require_POST
def set_language(request: HttpRequest) -> HttpResponseRedirect:
    """Keep the chosen language in the session, unlike Django's view, which sets a cookie."""
    remember_language(request, request.POST.get("language", ""))
    return HttpResponseRedirect(_safe_next(request, "/"))


@require_POST
@login_required
def organisation_switch(request: HttpRequest) -> HttpResponse:
    """Act in another organisation the person belongs to; any other id is simply not found."""
    user: Any = request.user
    try:
        organisation_id = int(request.POST.get("organisation", ""))
    except ValueError:
        raise Http404("No such organisation") from None
    membership = (
        selectors.membership_list_for_user(user=user)
        .filter(organisation_id=organisation_id)
        .first()
    )
    if membership is None:
        raise Http404("No such organisation")
    request.session[SESSION_KEY] = membership.organisation_id
    return redirect("web:dashboard")


def _lockout_minutes_left(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    from axes.helpers import get_client_ip_address, get_client_username
    from axes.models import AccessAttempt

    cooloff = settings.AXES_COOLOFF_TIME
    username = get_client_username(request, credentials)
    ip_address = get_client_ip_address(request)
    match = Q(ip_address=ip_address)
    if username:
        match |= Q(username=username)
    latest = (
        AccessAttempt.objects.filter(match).order_by("-attempt_time").first()
        if ip_address or username
        else None
    )
    if latest is None:
        return math.ceil(cooloff.total_seconds() / 60)
    seconds = (latest.attempt_time + cooloff - timezone.now()).total_seconds()
    return max(1, math.ceil(seconds / 60))


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
    *args: Any,
    **kwargs: Any,
) -> HttpResponse:
    """django-axes calls this once an account or address reached the failure limit (SEC-1)."""
    context = {"minutes_left": _lockout_minutes_left(request, credentials)}
    response = render(request, "web/lockout.html", context, status=429)
    response["Retry-After"] = str(context["minutes_left"] * 60)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403_csrf.html", status=403)
