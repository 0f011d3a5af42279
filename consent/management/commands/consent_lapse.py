"""``manage.py consent_lapse [--dry-run]``: withdraw lapsed consent now (CON-5).

Prints the report as JSON (counts per organisation id, no personal data). The same job runs
daily on Celery beat.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from consent.services import consent_lapse_run


class Command(BaseCommand):
    help = (
        "Write withdrawal entries for consent given two years ago or more by contacts without "
        "a live business relationship, unless renewed (CON-5)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would lapse; write nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = consent_lapse_run(dry_run=options["dry_run"])
        self.stdout.write(json.dumps(report.as_dict(), sort_keys=False))
