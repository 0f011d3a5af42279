"""Background work for contacts: thin tasks, ids in, one service call each."""

from __future__ import annotations

from celery import shared_task

from contacts import imports


@shared_task(name="contacts.tasks.contact_import_run", ignore_result=True)
def contact_import_run_task(job_id: int) -> None:
    """Run one queued CSV import. Not retried: a second run would find the job claimed, and
    the job itself records why it failed."""
    imports.contact_import_run(job_id=job_id)


@shared_task(name="contacts.tasks.contact_imports_purge", ignore_result=True)
def contact_imports_purge_task() -> None:
    """Delete finished imports' files after CONTACT_IMPORT_KEEP_DAYS (schedule it daily)."""
    imports.contact_imports_purge()
