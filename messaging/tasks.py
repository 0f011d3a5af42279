"""Thin Celery tasks: a queue name in, one dispatch or reconcile call (DESIGN.md, tasks.py)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="messaging.tasks.messages_dispatch", ignore_result=True)
def messages_dispatch(queue: str) -> int:
    """Drain the due messages of ``queue`` (transactional or bulk); returns how many were
    handled. Safe to run any number of times at once: rows are claimed, never shared."""
    from messaging.dispatch import dispatch_drain

    return dispatch_drain(queue=queue)


@shared_task(name="messaging.tasks.messages_dispatch_sweep", ignore_result=True)
def messages_dispatch_sweep() -> list[str]:
    """Periodic: wake the queues that have rows due (deferred by quiet hours or back-off,
    scheduled with send_at, or re-queued by the reconciler)."""
    from messaging.dispatch import due_queues

    queues = due_queues()
    for queue in queues:
        messages_dispatch.apply_async(kwargs={"queue": queue}, queue=queue)
    return queues


@shared_task(name="messaging.tasks.messages_reconcile", ignore_result=True)
def messages_reconcile() -> dict[str, int]:
    """Periodic: resolve rows a crashed worker left in "sending" (never a blind resend)."""
    from messaging.reconcile import messages_reconcile as reconcile

    return reconcile().as_dict()
