"""One HTTP client for the Infobip adapters: pooled keep-alive connections, no hidden retries
(dispatch decides retries), and the failure split that at-most-once delivery depends on.

- The request never left (connection refused, connect timeout): safe to retry.
- The request may have arrived (read timeout, connection dropped mid-answer): ``uncertain``;
  the rows go to the reconciler, which asks the provider before anything is sent again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from messaging.providers.base import ProviderError

# One pool per process, shared by threads; forked Celery workers build their own on first use.
_pool: urllib3.PoolManager | None = None


def pool() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        _pool = urllib3.PoolManager(num_pools=20, maxsize=8, retries=False)
    return _pool


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise ProviderError(
                f"the provider answered {self.status} with a body that is not JSON",
                permanent=False,
                code="bad_response",
                http_status=self.status,
                uncertain=True,
            ) from exc


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes | None = None,
    fields: Any = None,
) -> Response:
    timeout = urllib3.Timeout(connect=5.0, read=float(settings.MESSAGING_HTTP_TIMEOUT_SECONDS))
    try:
        if fields is not None:
            raw = pool().request(
                method, url, fields=fields, headers=dict(headers), timeout=timeout, retries=False
            )
        else:
            raw = pool().request(
                method, url, body=body, headers=dict(headers), timeout=timeout, retries=False
            )
    except (NewConnectionError, ConnectTimeoutError) as exc:
        raise ProviderError(
            f"could not connect to {_host(url)}: {exc.__class__.__name__}",
            permanent=False,
            code="connect_failed",
        ) from exc
    except (ReadTimeoutError, ProtocolError) as exc:
        raise ProviderError(
            f"no complete answer from {_host(url)} ({exc.__class__.__name__}); the request may "
            "have arrived",
            permanent=False,
            code="no_answer",
            uncertain=True,
        ) from exc
    except HTTPError as exc:
        raise ProviderError(
            f"HTTP error talking to {_host(url)}: {exc.__class__.__name__}",
            permanent=False,
            code="http_error",
            uncertain=True,
        ) from exc
    return Response(raw.status, {k.lower(): v for k, v in raw.headers.items()}, raw.data)


def _host(url: str) -> str:
    return urllib3.util.parse_url(url).host or url


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds form; an HTTP date is read too)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    from django.utils import timezone

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())
