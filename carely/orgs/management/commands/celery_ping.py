from __future__ import annotations

import secrets
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carely.orgs.management.commands._output import emit


class Command(BaseCommand):
    help = "Run one task through the broker and a worker and wait for its answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=60.0)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        from celery.exceptions import TimeoutError as CeleryTimeout

        from carely.lib.tasks import ping

        token = secrets.token_hex(8)
        started = time.monotonic()
        result = ping.delay(token)
        try:
            answer = result.get(timeout=options["timeout"])
        except CeleryTimeout:
            raise CommandError(
                f"No worker answered within {options['timeout']:.0f}s: is `celery worker` running?"
            ) from None
        if answer.get("token") != token:
            raise CommandError("The worker answered with a different token")
        elapsed = round(time.monotonic() - started, 3)
        payload = {"ok": True, "task_id": result.id, "seconds": elapsed, **answer}
        emit(self, payload, as_json=options["json"], human=f"Worker answered in {elapsed}s")
