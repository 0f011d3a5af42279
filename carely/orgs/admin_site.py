"""The Django admin, for platform operators only (SEC-2).

Clinic staff, organisation admins and DPOs never reach it: they work in the product's own pages,
where tenancy and the access log apply. Sign-in goes through allauth, so the admin cannot be a way
around MFA, lockout or the idle timeout.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

from carely.orgs.permissions import may
from carely.orgs.roles import Perm


class PlatformAdminSite(admin.AdminSite):
    site_header = "Carely PEP platform administration"
    site_title = "Carely PEP platform"
    index_title = "Platform administration"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and may(user=user, membership=None, perm=Perm.PLATFORM_ADMIN_SITE)
        )

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # One sign-in for the whole platform: allauth's, with its second factor and axes.
        next_url = request.GET.get("next") or resolve_url("admin:index")
        return redirect_to_login(next_url, resolve_url(settings.LOGIN_URL))

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # A signed-in person without the platform role would only bounce between the
            # admin and the login page; tell them plainly instead.
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied("The platform administration is for platform operators.")
            return inner(request, *args, **kwargs)

        return guarded


class OperatorModelAdmin(admin.ModelAdmin):
    """Operators view and change platform records; nothing is deleted from here.

    Removing an organisation's data goes through the exit export and retention flows, which keep
    the audit trail; the admin's delete button would skip both.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.admin_site.has_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.admin_site.has_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
