from __future__ import annotations

import pytest
from django.core.management.commands import flush

from carely.audit.guards import audit_purge_permit


@pytest.fixture(autouse=True, scope="session")
def _flush_may_empty_the_audit_log():
    """Transactional tests end with a flush; on SQLite that is a DELETE the guard refuses."""
    original = flush.Command.handle

    def handle(self, *args, **options):
        with audit_purge_permit("*"):
            return original(self, *args, **options)

    flush.Command.handle = handle
    yield
    flush.Command.handle = original
