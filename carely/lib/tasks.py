"""Platform-level background tasks."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "carely:beat:last"


@shared_task(name="carely.lib.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Beat runs this every minute; /readyz reports how long ago it last ran."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), timeout=3600)


@shared_task(name="carely.lib.tasks.ping")
def ping(token: str) -> dict[str, str]:
    """Round trip through the broker and a worker: used by the smoke test and operators."""
    return {"token": token, "worker_time": timezone.now().isoformat()}
