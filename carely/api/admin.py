from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from carely.api.models import ApiKey
from carely.orgs.admin_site import OperatorModelAdmin


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorModelAdmin):
    """Operators can see and revoke keys; keys are created by the service so that the plaintext
    is shown once to the person who asked for it. The digest is never displayed."""

    list_display = (
        "prefix",
        "name",
        "organisation",
        "scope_list",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "organisation__slug")
    list_select_related = ("organisation",)
    fields = (
        "organisation",
        "name",
        "prefix",
        "scopes",
        "rate_limit_per_minute",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = (
        "organisation",
        "prefix",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",  # revoke through the action; a revoked key never comes back
    )
    actions = ("revoke_selected",)

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    @admin.action(description="Revoke the selected API keys")
    def revoke_selected(self, request: HttpRequest, queryset: Any) -> None:
        from carely.api.services import api_key_revoke

        for key in queryset:
            api_key_revoke(key=key, revoked_by=request.user)  # type: ignore[arg-type]
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
