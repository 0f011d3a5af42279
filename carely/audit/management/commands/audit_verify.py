"""Walk the audit chains and fail, naming the first bad entry, when any was tampered with."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carely.audit.chain import chain_keys, chain_verify
from carely.audit.models import PLATFORM_CHAIN, chain_key_for
from carely.orgs.models import Organisation


class Command(BaseCommand):
    help = "Verify the audit hash chains; exit 1 at the first altered, removed or moved row."

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--org", help="only this organisation's chain (slug)")
        scope.add_argument("--platform", action="store_true", help="only the platform chain")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["org"]:
            organisation = Organisation.objects.filter(slug=options["org"]).first()
            if organisation is None:
                raise CommandError(f"No organisation has the slug {options['org']!r}")
            keys = [chain_key_for(organisation.pk)]
        elif options["platform"]:
            keys = [PLATFORM_CHAIN]
        else:
            keys = chain_keys()
        reports = [chain_verify(key) for key in keys]
        bad = [report for report in reports if not report.ok]
        if options["json"]:
            self.stdout.write(
                json.dumps({"ok": not bad, "chains": [r.as_dict() for r in reports]}, indent=2)
            )
        else:
            for report in reports:
                state = "ok" if report.ok else "BROKEN"
                self.stdout.write(f"{report.chain_key}: {report.events} entries checked, {state}")
        if bad:
            first = bad[0]
            raise CommandError(
                f"Audit chain {first.chain_key} is broken at entry #{first.first_bad_seq}"
                + (f" (row id {first.first_bad_id})" if first.first_bad_id else "")
                + f": {first.problem}"
            )
