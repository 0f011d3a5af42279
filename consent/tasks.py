"""Background work for consent: thin tasks, one service call each."""

from __future__ import annotations

from celery import shared_task

from consent.services import consent_lapse_run


@shared_task(name="consent.tasks.consent_lapse_run", ignore_result=True)
def consent_lapse_run_task() -> None:
    """Withdraw consent that lapsed (CON-5); daily on beat. Not retried: the next day's run
    picks up whatever this one did not reach, and a run is safe to repeat."""
    consent_lapse_run()
