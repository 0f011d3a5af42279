"""API keys: shown once, stored as a keyed hash, scoped, revocable (SEC-3)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from carely.api import selectors, services
from carely.api.models import ApiKey
from carely.api.scopes import UnknownScope
from carely.orgs.suspension import OrganisationSuspended

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("SEC-3")]


def test_key_is_stored_only_as_an_hmac_digest(org_a, settings):
    key, plaintext = services.api_key_create(
        organisation=org_a, name="PMS", scopes=["contacts:read"]
    )
    assert plaintext.startswith("cpk_") and len(plaintext) > 40
    expected = hmac.new(settings.HASH_KEY.encode(), plaintext.encode(), hashlib.sha256).hexdigest()
    key.refresh_from_db()
    assert key.digest == expected
    assert key.prefix == plaintext[4:12]
    # The plaintext is in no column of any API key row.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_apikey")
        rows = cursor.fetchall()
    assert rows and not any(plaintext in str(value) for row in rows for value in row)


def test_each_key_is_different_and_found_only_by_its_full_plaintext(org_a, make_key):
    (k1, p1), (k2, p2) = make_key(org_a), make_key(org_a)
    assert p1 != p2 and k1.digest != k2.digest
    assert selectors.api_key_find_by_plaintext(plaintext=p1) == k1
    assert selectors.api_key_find_by_plaintext(plaintext=p1[:-1]) is None
    assert selectors.api_key_find_by_plaintext(plaintext="not-a-key") is None


def test_unknown_scopes_are_refused_by_name(org_a):
    with pytest.raises(UnknownScope) as caught:
        services.api_key_create(
            organisation=org_a, name="x", scopes=["contacts:read", "contacts:delete", "admin"]
        )
    assert caught.value.names == ["admin", "contacts:delete"]
    assert "admin, contacts:delete" in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert not ApiKey.objects.exists()


def test_scopes_are_normalised_and_at_least_one_is_needed(org_a):
    key, _ = services.api_key_create(
        organisation=org_a, name="x", scopes=[" files:read", "contacts:write", "files:read"]
    )
    assert key.scopes == ["contacts:write", "files:read"]
    with pytest.raises(services.ApiKeyInvalid, match="at least one scope"):
        services.api_key_create(organisation=org_a, name="x", scopes=[])
    with pytest.raises(services.ApiKeyInvalid, match="needs a name"):
        services.api_key_create(organisation=org_a, name="  ", scopes=["files:read"])
    with pytest.raises(services.ApiKeyInvalid, match="rate limit"):
        services.api_key_create(
            organisation=org_a, name="x", scopes=["files:read"], rate_limit_per_minute=0
        )


def test_revoking_keeps_the_first_revocation_time(org_a, make_key):
    key, _ = make_key(org_a)
    services.api_key_revoke(key=key)
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    assert first is not None
    services.api_key_revoke(key=key)
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first


@pytest.mark.obligation("TEN-3")
def test_a_suspended_organisation_cannot_create_keys_but_can_revoke_them(org_a, make_key):
    key, _ = make_key(org_a)
    org_a.suspended_at = timezone.now()
    org_a.save()
    with pytest.raises(OrganisationSuspended):
        make_key(org_a)
    services.api_key_revoke(key=key)  # shutting off a leaked key is always possible
    assert ApiKey.objects.get(pk=key.pk).is_revoked


@pytest.mark.obligation("TEN-1")
def test_selectors_never_return_another_organisations_key(org_a, org_b, make_key):
    key_a, _ = make_key(org_a)
    key_b, _ = make_key(org_b)
    assert list(selectors.api_key_list(organisation=org_a)) == [key_a]
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.api_key_get(organisation=org_a, key_id=key_b.pk)
    assert selectors.api_key_get(organisation=org_b, key_id=key_b.pk) == key_b


def test_last_use_is_recorded_at_most_once_a_minute(org_a, make_key, django_assert_num_queries):
    key, _ = make_key(org_a)
    stale = ApiKey.objects.get(pk=key.pk)  # as another process would still hold it
    start = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        services.api_key_touch(key=ApiKey.objects.get(pk=key.pk))
        assert ApiKey.objects.get(pk=key.pk).last_used_at == start
    with time_machine.travel(start + dt.timedelta(seconds=30), tick=False):
        fresh = ApiKey.objects.get(pk=key.pk)
        with django_assert_num_queries(0):
            services.api_key_touch(key=fresh)
        # A process that has not seen the first write still does not overwrite it.
        services.api_key_touch(key=stale)
        assert ApiKey.objects.get(pk=key.pk).last_used_at == start
    later = start + dt.timedelta(seconds=61)
    with time_machine.travel(later, tick=False):
        services.api_key_touch(key=ApiKey.objects.get(pk=key.pk))
        assert ApiKey.objects.get(pk=key.pk).last_used_at == later


@pytest.mark.obligation("SEC-4")
def test_creating_and_revoking_are_audited_without_the_key(org_a, admin_a):
    from carely.audit.models import AuditEvent

    key, plaintext = services.api_key_create(
        organisation=org_a, name="PMS", scopes=["contacts:read"], created_by=admin_a
    )
    services.api_key_revoke(key=key, revoked_by=admin_a)
    services.api_key_revoke(key=key, revoked_by=admin_a)  # no second event
    events = list(
        AuditEvent.objects.filter(object_type="api_key")
        .order_by("seq")
        .values("action", "organisation_id", "object_id", "actor_type", "actor_id", "details")
    )
    assert [(e["action"], e["actor_type"], e["actor_id"]) for e in events] == [
        ("api_key.create", "user", str(admin_a.pk)),
        ("api_key.revoke", "user", str(admin_a.pk)),
    ]
    assert all(e["organisation_id"] == org_a.pk and e["object_id"] == str(key.pk) for e in events)
    assert plaintext not in str(events) and key.digest not in str(events)
