"""Re-encrypt every encrypted field under the newest key of CARELY_FIELD_KEYS (ADR 4).

Safe to re-run: values already under the newest key are skipped. Once it reports no values left
to rotate, older keys may be removed from CARELY_FIELD_KEYS.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carely.privacy.crypto import DecryptionError, keyring
from carely.privacy.rotation import rotate_all


class Command(BaseCommand):
    help = "Re-encrypt encrypted fields with the newest field key, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            results = rotate_all(batch_size=options["batch_size"], dry_run=options["dry_run"])
        except DecryptionError as exc:
            raise CommandError(str(exc)) from None
        report = {
            "newest_key": keyring().newest.kid,
            "dry_run": options["dry_run"],
            "models": {label: stats.as_dict() for label, stats in results.items()},
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
        for label, stats in results.items():
            self.stdout.write(
                f"{label}: {verb} {stats.values_rotated} values in {stats.rows_rotated} of "
                f"{stats.rows_scanned} rows"
            )
        self.stdout.write(f"newest key: {report['newest_key']}")
