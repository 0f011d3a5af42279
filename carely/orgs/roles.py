"""Roles and what each may do: the one place permission checks are decided (SEC-2).

A view or API endpoint asks ``may(actor, Perm.X)``; nothing else compares role names. Least
privilege: a role gets a permission only when the work of people in that role needs it.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    STAFF = "staff", _("Staff")
    ORG_ADMIN = "org_admin", _("Organisation admin")
    DPO = "dpo", _("Data protection officer")


class PlatformRole(models.TextChoices):
    NONE = "", _("None")
    OPERATOR = "operator", _("Platform operator")
    PLATFORM_DPO = "platform_dpo", _("Platform DPO")


class Perm(StrEnum):
    # Patient data of one clinic.
    CONTACTS_VIEW = "contacts.view"
    CONTACTS_EDIT = "contacts.edit"
    CONTACTS_EXPORT = "contacts.export"
    CONSENT_RECORD = "consent.record"
    MESSAGES_VIEW = "messages.view"
    MESSAGES_SEND = "messages.send"
    CAMPAIGNS_MANAGE = "campaigns.manage"
    # The second pair of eyes on a marketing send (four eyes): never the campaign's own author.
    CAMPAIGNS_APPROVE = "campaigns.approve"
    FILES_VIEW = "files.view"
    # Running the organisation.
    USERS_MANAGE = "users.manage"
    API_KEYS_MANAGE = "api_keys.manage"
    RETENTION_MANAGE = "retention.manage"
    ORG_SETTINGS = "org.settings"
    # Accountability, for the clinic's DPO.
    DSR_REVIEW = "dsr.review"
    ACCESS_LOG_VIEW = "access_log.view"
    AUDIT_VIEW = "audit.view"
    BREACH_REGISTER = "breach.register"
    PROCESSING_RECORDS = "processing.records"
    # Platform side: no clinic's patient data.
    PLATFORM_ORGANISATIONS = "platform.organisations"
    PLATFORM_CONTRACTS = "platform.contracts"
    PLATFORM_USAGE = "platform.usage"
    PLATFORM_SUBPROCESSORS = "platform.subprocessors"
    PLATFORM_DSR = "platform.dsr"
    PLATFORM_ADMIN_SITE = "platform.admin_site"


_STAFF = {
    Perm.CONTACTS_VIEW,
    Perm.CONTACTS_EDIT,
    Perm.CONSENT_RECORD,
    Perm.MESSAGES_VIEW,
    Perm.MESSAGES_SEND,
    Perm.CAMPAIGNS_MANAGE,
    Perm.FILES_VIEW,
}

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.STAFF: frozenset(_STAFF),
    Role.ORG_ADMIN: frozenset(
        _STAFF
        | {
            Perm.CONTACTS_EXPORT,
            Perm.CAMPAIGNS_APPROVE,
            Perm.USERS_MANAGE,
            Perm.API_KEYS_MANAGE,
            Perm.RETENTION_MANAGE,
            Perm.ORG_SETTINGS,
            Perm.AUDIT_VIEW,
        }
    ),
    # The DPO reads contacts and files to answer requests, but does not market to them.
    Role.DPO: frozenset(
        {
            Perm.CONTACTS_VIEW,
            Perm.CONTACTS_EXPORT,
            Perm.FILES_VIEW,
            Perm.MESSAGES_VIEW,
            Perm.DSR_REVIEW,
            Perm.ACCESS_LOG_VIEW,
            Perm.AUDIT_VIEW,
            Perm.BREACH_REGISTER,
            Perm.PROCESSING_RECORDS,
        }
    ),
}

PLATFORM_PERMISSIONS: dict[str, frozenset[Perm]] = {
    PlatformRole.OPERATOR: frozenset(
        {
            Perm.PLATFORM_ORGANISATIONS,
            Perm.PLATFORM_CONTRACTS,
            Perm.PLATFORM_USAGE,
            Perm.PLATFORM_SUBPROCESSORS,
            Perm.PLATFORM_ADMIN_SITE,
        }
    ),
    PlatformRole.PLATFORM_DPO: frozenset(
        {
            Perm.PLATFORM_DSR,
            Perm.PLATFORM_SUBPROCESSORS,
            Perm.PROCESSING_RECORDS,
            Perm.BREACH_REGISTER,
        }
    ),
}

# Roles whose holders must pass a second factor (SEC-1); an organisation may extend this to all.
MFA_REQUIRED_ROLES = frozenset({Role.ORG_ADMIN, Role.DPO})
