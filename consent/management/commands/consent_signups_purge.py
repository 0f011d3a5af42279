"""``manage.py consent_signups_purge [--dry-run]``: delete public-form sign-ups whose code was
never confirmed in time. Prints ``{"dry_run": ..., "deleted": n}``. Hourly on Celery beat too."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consent.signups import pending_signups_purge


class Command(BaseCommand):
    help = "Delete expired, unconfirmed sign-ups of the public consent form."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = pending_signups_purge(dry_run=options["dry_run"])
        self.stdout.write(json.dumps({"dry_run": options["dry_run"], "deleted": deleted}))
