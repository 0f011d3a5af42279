"""Liveness and readiness probes.

/healthz answers while the process can serve a request at all. /readyz checks each peer the
platform needs (database, broker, file storage) and says which failed, so an orchestrator keeps
traffic away and an operator knows where to look. Neither reveals configuration values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from carely.celery import app as celery_app
from carely.lib.tasks import HEARTBEAT_KEY

log = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _check_storage() -> None:
    # exists() is a metadata read (a HEAD on S3): proves reachability and credentials, no write.
    default_storage.exists("readyz-probe")


CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "storage": _check_storage,
}


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:
            log.warning("readiness check %s failed: %s", name, exc.__class__.__name__)
            results[name] = {"ok": False, "error": exc.__class__.__name__}
        else:
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    failed = [name for name, result in results.items() if not result["ok"]]
    body = {
        "status": "ok" if not failed else "unavailable",
        "failed": failed,
        "checks": results,
        "beat_last_seen": cache.get(HEARTBEAT_KEY),
    }
    return JsonResponse(body, status=200 if not failed else 503)
