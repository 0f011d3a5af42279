"""Fixed-window counters in the shared cache, for public pages that take no account (sign-up
forms, request forms): how many times someone did something this hour.

``who`` (an IP address, an e-mail) is keyed-hashed before it becomes part of a cache key, so the
cache never holds an address. Each caller names its own ``namespace``, which is also the keyed
hash's purpose: two forms never share or can compare counters.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from carely.lib.keyed_hash import keyed_hash

HOUR = 3600


def over_limit(namespace: str, scope: str, who: str, limit: int, window: int = HOUR) -> bool:
    """Count one event of ``who`` in ``scope`` for the current window; True once past ``limit``."""
    slot = int(time.time() // window)
    digest = keyed_hash(who, purpose=namespace, encoding="hex")[:32]
    key = f"{namespace}:{scope}:{digest}:{slot}"
    cache.add(key, 0, timeout=window * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window * 2)
        count = 1
    return count > limit
