"""Thin Celery tasks for campaigns (DESIGN.md, tasks.py): an id in, one service call."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="campaigns.tasks.campaign_materialise", ignore_result=True)
def campaign_materialise(campaign_id: int) -> dict[str, object]:
    """Fill the outbox for one campaign from its cursor (safe to run again at any time)."""
    from campaigns.links import click_url_maker
    from campaigns.materialise import campaign_materialise as materialise

    report = materialise(campaign_id, track_links=click_url_maker(campaign_id))
    return {"queued": report.queued, "finished": report.finished}


@shared_task(name="campaigns.tasks.campaigns_tick", ignore_result=True)
def campaigns_tick() -> dict[str, int]:
    """Periodic: start scheduled campaigns that are due, pick up a materialisation a crashed
    worker left half done, and complete campaigns whose every message has ended."""
    from django.utils import timezone

    from campaigns.materialise import campaigns_complete
    from campaigns.models import Campaign, State

    now = timezone.now()
    due = list(
        Campaign.objects.filter(state=State.SCHEDULED, send_at__lte=now).values_list(
            "pk", flat=True
        )
    ) + list(
        Campaign.objects.filter(state=State.SCHEDULED, send_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    unfinished = list(
        Campaign.objects.filter(state=State.SENDING, materialised_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    for pk in [*due, *unfinished]:
        campaign_materialise.delay(pk)
    return {
        "started": len(due),
        "resumed": len(unfinished),
        "completed": campaigns_complete(now=now),
    }
