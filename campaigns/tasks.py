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


@shared_task(name="campaigns.tasks.campaign_messages_settle", ignore_result=True)
def campaign_messages_settle(campaign_id: int) -> bool:
    """Move the rest of a large campaign's messages after a pause, resume or cancel."""
    from campaigns.models import Campaign
    from campaigns.services import campaign_messages_settle as settle

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    return True if campaign is None else settle(campaign=campaign)


@shared_task(name="campaigns.tasks.campaigns_tick", ignore_result=True)
def campaigns_tick() -> dict[str, int]:
    """Periodic: start scheduled campaigns that are due, pick up a materialisation a crashed
    worker left half done, move the messages a pause, resume or cancel of the last day left to
    move (a lost settle task), and complete campaigns whose every message has ended."""
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.materialise import campaigns_complete
    from campaigns.models import Campaign, State
    from campaigns.services import INLINE_MOVE_LIMIT
    from campaigns.services import campaign_messages_settle as settle

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
    unsettled = 0
    recent = Campaign.objects.filter(updated_at__gte=now - timedelta(days=1)).exclude(
        state__in=[State.DRAFT, State.AWAITING_APPROVAL, State.COMPLETED]
    )
    for campaign in recent:
        unsettled += not settle(campaign=campaign, limit=INLINE_MOVE_LIMIT)
    return {
        "started": len(due),
        "resumed": len(unfinished),
        "unsettled": unsettled,
        "completed": campaigns_complete(now=now),
    }
