"""Operator views of organisations, contracts, memberships and staff accounts.

Suspension goes through the services, never by editing fields, so the same rules apply here as in
the command line. Passwords and second factors are not editable here: people reset their own.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from carely.orgs import services
from carely.orgs.admin_site import OperatorModelAdmin
from carely.orgs.models import Contract, Membership, Organisation, User


class OperatorInline(admin.TabularInline):
    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.admin_site.has_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.admin_site.has_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ContractInline(OperatorInline):
    model = Contract
    extra = 0
    fields = ("reference", "activation_date", "non_renewal_notice_on", "term_end", "notice_by")
    readonly_fields = ("term_end", "notice_by")

    @admin.display(description="current term ends")
    def term_end(self, obj: Contract) -> object:
        return obj.current_term_end() if obj.pk else "-"

    @admin.display(description="last day for non-renewal notice")
    def notice_by(self, obj: Contract) -> object:
        return obj.last_notice_day() if obj.pk else "-"


class MembershipInline(OperatorInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organisation)
class OrganisationAdmin(OperatorModelAdmin):
    list_display = ("name", "slug", "created_at", "suspended_at", "suspension_reason")
    list_filter = ("suspended_at",)
    search_fields = ("name", "slug")
    readonly_fields = ("suspended_at", "suspension_reason", "created_at")
    inlines = (ContractInline, MembershipInline)
    actions = ("suspend_for_unpaid_invoices", "lift_suspension")

    @admin.action(description="Suspend for unpaid invoices (reads stay, writes and sends stop)")
    def suspend_for_unpaid_invoices(self, request: HttpRequest, queryset: QuerySet) -> None:
        for organisation in queryset:
            services.organisation_suspend(organisation=organisation, reason="Unpaid invoices")
        self.message_user(request, f"{queryset.count()} suspended.", messages.WARNING)

    @admin.action(description="Lift suspension")
    def lift_suspension(self, request: HttpRequest, queryset: QuerySet) -> None:
        for organisation in queryset:
            services.organisation_unsuspend(organisation=organisation)
        self.message_user(request, f"Suspension lifted for {queryset.count()}.")


@admin.register(User)
class UserAdmin(OperatorModelAdmin):
    list_display = ("email", "full_name", "platform_role", "is_staff", "is_active", "last_login")
    list_filter = ("platform_role", "is_staff", "is_active")
    search_fields = ("email", "full_name")
    fields = ("email", "full_name", "platform_role", "preferred_language", "is_active", "is_staff")
    inlines = (MembershipInline,)
