"""Background work for consent: thin tasks, one service call each."""

from __future__ import annotations

from celery import shared_task

from consent.services import consent_lapse_run


@shared_task(name="consent.tasks.consent_lapse_run", ignore_result=True)
def consent_lapse_run_task() -> None:
    """Withdraw consent that lapsed (CON-5); daily on beat. Not retried: the next day's run
    picks up whatever this one did not reach, and a run is safe to repeat."""
    consent_lapse_run()


@shared_task(name="consent.tasks.pending_signups_purge", ignore_result=True)
def pending_signups_purge_task() -> None:
    """Delete public-form sign-ups never confirmed within their 30 minutes; hourly on beat.
    Not retried: the next hour's run deletes whatever this one did not."""
    from consent.signups import pending_signups_purge

    pending_signups_purge()
