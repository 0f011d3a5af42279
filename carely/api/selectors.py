"""Reads over API keys, always scoped to one organisation (TEN-1)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from carely.api.models import KEY_MARKER, ApiKey
from carely.api.services import api_key_digest
from carely.orgs.models import Organisation


def api_key_list(*, organisation: Organisation | None) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.for_organisation(organisation)
        .select_related("created_by")
        .order_by("-created_at", "-pk")
    )


def api_key_get(*, organisation: Organisation | None, key_id: int) -> ApiKey:
    """The key in this organisation, or 404: another organisation's id is not found."""
    return get_object_or_404(api_key_list(organisation=organisation), pk=key_id)


def api_key_find_by_plaintext(*, plaintext: str) -> ApiKey | None:
    """The key (revoked or not) whose digest matches, else None.

    The one lookup not scoped to an organisation: the key is what tells us the organisation.
    """
    if not plaintext.startswith(KEY_MARKER) or len(plaintext) > 200:
        return None
    return (
        ApiKey.objects.filter(digest=api_key_digest(plaintext))
        .select_related("organisation")
        .first()
    )
