"""What the page shell needs on every page: organisation, switcher, navigation by role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from carely.orgs import selectors
from carely.orgs.permissions import request_may
from carely.orgs.roles import Perm

# (name, label, url name, permission or None for everyone signed in). Only pages that exist: a
# url name that does not resolve (an app not mounted yet) is left out rather than linked dead.
NAV = (
    ("dashboard", _("Dashboard"), "web:dashboard", None),
    ("contacts", _("Contacts"), "contacts:list", Perm.CONTACTS_VIEW),
    ("messages", _("Messages"), "messaging:log", Perm.MESSAGES_VIEW),
    ("campaigns", _("Campaigns"), "campaigns:list", Perm.CAMPAIGNS_MANAGE),
    ("members", _("Members"), "web:members", Perm.USERS_MANAGE),
    ("api_keys", _("API keys"), "api_keys:list", Perm.API_KEYS_MANAGE),
    ("requests", _("Data-subject requests"), "dsr:queue", Perm.DSR_REVIEW),
    ("platform_requests", _("Platform requests"), "dsr:platform_queue", Perm.PLATFORM_DSR),
    ("access_log", _("Access log"), "audit:access_log", Perm.ACCESS_LOG_VIEW),
    ("records", _("Records of processing"), "privacy:records", Perm.PROCESSING_RECORDS),
    ("platform_admin", _("Platform admin"), "admin:index", Perm.PLATFORM_ADMIN_SITE),
)


def nav_links(request: HttpRequest) -> list[dict[str, Any]]:
    if not request.user.is_authenticated:
        return []
    links = []
    for name, label, url_name, perm in NAV:
        if perm is not None and not request_may(request, perm):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        current = request.path == url if url == "/" else request.path.startswith(url)
        links.append({"name": name, "label": label, "url": url, "current": current})
    return links


def shell(request: HttpRequest) -> dict[str, Any]:
    user: Any = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": [], "switchable_memberships": []}
    memberships = list(selectors.membership_list_for_user(user=user))
    return {
        "nav_links": nav_links(request),
        "current_membership": getattr(request, "membership", None),
        "current_organisation": getattr(request, "organisation", None),
        # The switcher appears only for people in more than one organisation.
        "switchable_memberships": memberships if len(memberships) > 1 else [],
    }
