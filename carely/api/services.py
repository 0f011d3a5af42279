"""Writes over API keys (SEC-3) and idempotency records."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from carely.api.models import KEY_MARKER, PREFIX_LENGTH, ApiKey, IdempotencyRecord
from carely.api.scopes import UnknownScope, scopes_normalise
from carely.audit.context import Actor
from carely.audit.services import audit_record
from carely.orgs.models import Organisation, User
from carely.orgs.suspension import suspension_check_write

__all__ = [
    "ApiKeyInvalid",
    "UnknownScope",
    "api_key_create",
    "api_key_digest",
    "api_key_revoke",
    "api_key_touch",
    "idempotency_record_purge_expired",
]

# Recording every request's time would turn each read into a write; a minute is precise enough
# for "is this key still in use?".
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
MAX_RATE_PER_MINUTE = 100_000


class ApiKeyInvalid(ValueError):
    """Bad input for a new key (name, rate limit, no scopes); ``str(exc)`` says what to fix."""


def api_key_digest(plaintext: str) -> str:
    """Keyed hash of the full key; see docs/adr/0003-api-key-hashing.md for why not Argon2."""
    return hmac.new(settings.HASH_KEY.encode(), plaintext.encode(), hashlib.sha256).hexdigest()


@transaction.atomic
def api_key_create(
    *,
    organisation: Organisation,
    name: str,
    scopes: list[str] | tuple[str, ...],
    created_by: User | None = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and never shown again.

    Raises ``UnknownScope`` (a ValueError naming the bad scopes), ``ApiKeyInvalid`` and
    ``OrganisationSuspended``.
    """
    suspension_check_write(organisation)
    name = (name or "").strip()
    if not name:
        raise ApiKeyInvalid("An API key needs a name, e.g. the system that will use it.")
    if len(name) > 100:
        raise ApiKeyInvalid("An API key name can be at most 100 characters long.")
    clean_scopes = scopes_normalise(scopes)
    if not clean_scopes:
        raise ApiKeyInvalid("Choose at least one scope for the key.")
    if rate_limit_per_minute is not None and not 1 <= rate_limit_per_minute <= MAX_RATE_PER_MINUTE:
        raise ApiKeyInvalid(
            f"The rate limit must be between 1 and {MAX_RATE_PER_MINUTE} requests per minute."
        )
    plaintext = KEY_MARKER + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        organisation=organisation,
        name=name,
        prefix=plaintext[len(KEY_MARKER) : len(KEY_MARKER) + PREFIX_LENGTH],
        digest=api_key_digest(plaintext),
        scopes=clean_scopes,
        created_by=created_by,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    audit_record(
        action="api_key.create",
        organisation=organisation,
        object_type="api_key",
        object_id=key.pk,
        details={"scopes": clean_scopes, "rate_limit_per_minute": rate_limit_per_minute},
        actor=Actor.user(created_by.pk) if created_by is not None else None,
    )
    return key, plaintext


@transaction.atomic
def api_key_revoke(*, key: ApiKey, revoked_by: User | None = None) -> ApiKey:
    """Revoke at once; revoking again keeps the first revocation time.

    Deliberately not refused while the organisation is suspended: shutting off a leaked key lowers
    risk, changes no personal data, and TEN-3 only stops writes to the organisation's data.
    """
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            action="api_key.revoke",
            organisation=key.organisation_id,
            object_type="api_key",
            object_id=key.pk,
            actor=Actor.user(revoked_by.pk) if revoked_by is not None else None,
        )
    return key


def api_key_touch(*, key: ApiKey) -> None:
    """Record use at most once per minute per key.

    A conditional UPDATE, so that concurrent requests in several processes write at most once.
    """
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if key.last_used_at is not None and key.last_used_at > cutoff:
        return
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff)
    ).update(last_used_at=now)
    key.last_used_at = now


def idempotency_record_purge_expired(*, now: dt.datetime | None = None) -> int:
    """Delete records older than their 24-hour lifetime; returns how many went."""
    cutoff = (now or timezone.now()) - IdempotencyRecord.LIFETIME
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
