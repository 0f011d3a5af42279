"""``manage.py messages_reconcile [--dry-run]``: resolve messages a crashed worker left in
"sending" (MSG-9). Asks the provider by our message id; never sends anything itself.

Prints the report as JSON (counts only). The same job runs every minute on Celery beat.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from messaging.reconcile import messages_reconcile


class Command(BaseCommand):
    help = (
        "Resolve messages left in 'sending' past their lease: record those the provider has, "
        "release those never handed over, re-queue those the provider confirms it never got "
        "(after the grace period)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Ask the provider and count; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = messages_reconcile(dry_run=options["dry_run"])
        self.stdout.write(json.dumps(report.as_dict()))
