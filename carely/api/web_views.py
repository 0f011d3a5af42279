"""Staff pages for an organisation's API keys (SEC-3): list, create (shown once), revoke."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from carely.api import selectors, services
from carely.api.forms import ApiKeyCreateForm
from carely.api.scopes import UnknownScope
from carely.orgs.permissions import require
from carely.orgs.roles import Perm
from carely.orgs.suspension import OrganisationSuspended


@require(Perm.API_KEYS_MANAGE)
@require_http_methods(["GET"])
def api_key_list_view(request: HttpRequest) -> HttpResponse:
    keys = selectors.api_key_list(organisation=request.organisation)  # type: ignore[attr-defined]
    return render(
        request,
        "api/api_key_list.html",
        {"keys": keys, "default_rate": settings.API_DEFAULT_RATE_PER_MINUTE},
    )


@require(Perm.API_KEYS_MANAGE)
@require_http_methods(["GET", "POST"])
@never_cache
def api_key_create_view(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    form = ApiKeyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key, plaintext = services.api_key_create(
                organisation=organisation,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,  # type: ignore[arg-type]
                rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"],
            )
        except (UnknownScope, services.ApiKeyInvalid, OrganisationSuspended) as exc:
            form.add_error(None, str(exc))
        else:
            # Rendered, not redirected: the plaintext must not pass through the session or a
            # URL, and never_cache keeps it out of the browser's and proxies' caches.
            return render(request, "api/api_key_created.html", {"key": key, "plaintext": plaintext})
    return render(request, "api/api_key_create.html", {"form": form})


@require(Perm.API_KEYS_MANAGE)
@require_http_methods(["GET", "POST"])
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = selectors.api_key_get(
        organisation=request.organisation,  # type: ignore[attr-defined]
        key_id=key_id,
    )
    if request.method == "POST":
        services.api_key_revoke(key=key, revoked_by=request.user)  # type: ignore[arg-type]
        messages.success(
            request,
            _("The API key %(name)s is revoked and stops working at once.") % {"name": key.name},
        )
        return redirect("api_keys:list")
    return render(request, "api/api_key_revoke.html", {"key": key})
