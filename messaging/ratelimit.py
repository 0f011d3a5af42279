"""Provider requests per second per provider account, shared by every worker (MSG-9).

With ``REDIS_URL`` the bucket lives in Redis (one Lua call per request, atomic across
processes and machines); without it each process keeps its own, which is what the embedded
mode's single worker needs. A 429 from the provider also *blocks* the account for its
Retry-After, so every worker backs off together instead of each finding out on its own.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache

from django.conf import settings

# KEYS[1] bucket, KEYS[2] block; ARGV rate/s, burst, now (s). Returns seconds to wait (0: go).
_TAKE = """
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
local now = tonumber(ARGV[3])
if blocked > now then return tostring(blocked - now) end
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
if tokens < 1 then return tostring((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', now)
redis.call('EXPIRE', KEYS[1], 60)
return '0'
"""
_BLOCK = """
local block_until = tonumber(ARGV[1])
if block_until > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', math.ceil(tonumber(ARGV[2])) + 1)
end
return 1
"""


class LocalLimiter:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._blocked: dict[str, float] = {}

    def take(self, account: str) -> float:
        now = time.monotonic()
        with self._lock:
            blocked = self._blocked.get(account, 0.0)
            if blocked > now:
                return blocked - now
            tokens, at = self._buckets.get(account, (self.rate, now))
            tokens = min(self.rate, tokens + (now - at) * self.rate)
            if tokens < 1:
                return (1 - tokens) / self.rate
            self._buckets[account] = (tokens - 1, now)
            return 0.0

    def block(self, account: str, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + seconds
            self._blocked[account] = max(self._blocked.get(account, 0.0), until)


class RedisLimiter:
    def __init__(self, url: str, rate: float) -> None:
        import redis

        self.rate = rate
        self.client = redis.Redis.from_url(url)
        self._take = self.client.register_script(_TAKE)
        self._block = self.client.register_script(_BLOCK)

    @staticmethod
    def _keys(account: str) -> list[str]:
        return [f"carely:msg:rate:{account}", f"carely:msg:block:{account}"]

    def take(self, account: str) -> float:
        wait = self._take(keys=self._keys(account), args=[self.rate, self.rate, time.time()])
        return float(wait)

    def block(self, account: str, seconds: float) -> None:
        self._block(keys=self._keys(account)[1:], args=[time.time() + seconds, seconds])


@lru_cache(maxsize=1)
def limiter() -> LocalLimiter | RedisLimiter:
    rate = float(settings.MESSAGING_RATE_LIMIT_PER_SECOND)
    if settings.REDIS_URL:
        return RedisLimiter(str(settings.REDIS_URL), rate)
    return LocalLimiter(rate)
