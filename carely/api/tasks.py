"""API housekeeping tasks (thin: one service call each)."""

from __future__ import annotations

from celery import shared_task

from carely.api import services


@shared_task(name="carely.api.tasks.idempotency_records_purge", ignore_result=True)
def idempotency_records_purge() -> int:
    """Delete Idempotency-Key records past their 24 hours; run hourly from beat.

    Lookups already ignore and sweep a key's expired records, so a missed run only costs space.
    """
    return services.idempotency_record_purge_expired()
