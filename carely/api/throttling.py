"""Per-key rate limit (SEC-3): a fixed one-minute window counted in the shared cache.

``cache.add`` then ``cache.incr`` is atomic on Redis and LocMem; on the file cache ``incr`` is a
read and a write, so concurrent processes can undercount a little, which the embedded default
accepts. The window key carries the minute, so old windows simply expire.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from carely.api.models import ApiKey

WINDOW_SECONDS = 60


class ApiKeyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # unauthenticated requests were already refused with 401
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        cache_key = f"api-rate:{key.pk}:{window}"
        # Outlive the window a little so a slow request at its end still finds the counter.
        cache.add(cache_key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # evicted between add and incr: start again
            cache.set(cache_key, 1, timeout=WINDOW_SECONDS * 2)
            count = 1
        if count <= key.rate_per_minute:
            return True
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        if self._wait is None:
            return None
        return max(1, math.ceil(self._wait))
