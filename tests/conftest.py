"""Shared fixtures: two organisations and the standing personas (DESIGN.md, "Tests").

Persona matrix for every view and endpoint: anonymous, a member of the other organisation, the
wrong role, the right role.
"""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache

from carely.orgs.roles import PlatformRole, Role
from tests.factories import PASSWORD, MembershipFactory, OrganisationFactory, UserFactory

# Playwright's sync API runs an event loop in the test thread; Django must still allow ORM calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _clean_cache():
    """Rate-limit and lockout counters live in the cache; no test may inherit another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def org_a(db):
    return OrganisationFactory(name="Clinic A", slug="clinic-a")


@pytest.fixture
def org_b(db):
    return OrganisationFactory(name="Clinic B", slug="clinic-b")


def _member(org, role):
    return MembershipFactory(organisation=org, role=role).user


@pytest.fixture
def staff_a(org_a):
    return _member(org_a, Role.STAFF)


@pytest.fixture
def admin_a(org_a):
    return _member(org_a, Role.ORG_ADMIN)


@pytest.fixture
def dpo_a(org_a):
    return _member(org_a, Role.DPO)


@pytest.fixture
def staff_b(org_b):
    return _member(org_b, Role.STAFF)


@pytest.fixture
def admin_b(org_b):
    return _member(org_b, Role.ORG_ADMIN)


@pytest.fixture
def operator(db):
    return UserFactory(platform_role=PlatformRole.OPERATOR, is_staff=True)


@pytest.fixture
def platform_dpo(db):
    return UserFactory(platform_role=PlatformRole.PLATFORM_DPO)


def login(client, user, *, mfa: bool = True) -> None:
    """Sign ``user`` in on ``client`` as allauth would after the password (and TOTP) step.

    allauth records each passed step in the session under ``account_authentication_methods``;
    MfaRequiredMiddleware reads the "mfa" entry, so tests mark it here instead of typing codes.
    """
    import time

    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    session = client.session
    methods = [{"method": "password", "at": time.time(), "email": user.email}]
    if mfa:
        methods.append({"method": "mfa", "at": time.time(), "type": "totp"})
    session["account_authentication_methods"] = methods
    session.save()


@pytest.fixture(autouse=True, scope="session")
def _flush_may_empty_the_audit_log():
    """Transactional tests (live_server, browser) end with a flush; on SQLite that is a DELETE the
    audit log's append-only guard refuses. Only the test flush gets this permit."""
    from django.core.management.commands import flush

    from carely.audit.guards import audit_purge_permit

    original = flush.Command.handle

    def handle(self, *args, **options):
        with audit_purge_permit("*"):
            return original(self, *args, **options)

    flush.Command.handle = handle
    yield
    flush.Command.handle = original
