"""Provider adapters behind one small interface (``base.Provider``), chosen per channel by a
dotted path in ``settings.MESSAGING_PROVIDERS``, like Django's EMAIL_BACKEND."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from messaging.providers.base import Provider, ProviderConfig


def provider_for(channel: str, config: ProviderConfig) -> Provider:
    path = settings.MESSAGING_PROVIDERS.get(channel)
    if not path:
        raise LookupError(f"settings.MESSAGING_PROVIDERS has no adapter for channel {channel!r}")
    provider: Provider = import_string(path)(config)
    return provider
