"""Thin Celery tasks: a queue name in, one dispatch or reconcile call (DESIGN.md, tasks.py)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="messaging.tasks.messages_dispatch", ignore_result=True)
def messages_dispatch(queue: str) -> int:
    """Drain the due messages of ``queue`` (transactional or bulk); returns how many were
    handled. Safe to run any number of times at once: rows are claimed, never shared."""
    from messaging.dispatch import dispatch_drain

    return dispatch_drain(queue=queue)
