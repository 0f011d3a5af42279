"""The click redirect (``/r/<token>/``): public, no login, no cookie, no third party."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from campaigns.links import ClickTokenInvalid, click_token_read
from campaigns.models import Campaign, CampaignLink
from messaging.models import EventSource, Message, MessageEvent


@never_cache
@require_safe
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click on the contact's message of the campaign (first click per link), then
    send the browser on. A mail scanner that fetches every link also lands here; that is why
    the count is "clicked", not "read", and why only the first click per link counts."""
    try:
        campaign_id, contact_id, number = click_token_read(token)
    except ClickTokenInvalid:
        return render(request, "consent/link_invalid.html", status=404)
    campaign = Campaign.objects.filter(pk=campaign_id).only("pk", "organisation_id").first()
    link = (
        CampaignLink.objects.filter(campaign_id=campaign_id, number=number).only("url").first()
        if campaign
        else None
    )
    if campaign is None or link is None:
        return render(request, "consent/link_invalid.html", status=404)
    message_id = (
        Message.objects.filter(
            organisation_id=campaign.organisation_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
        )
        .values_list("pk", flat=True)
        .first()
    )
    if message_id is not None:
        now = timezone.now()
        try:
            with transaction.atomic():
                MessageEvent.objects.create(
                    organisation_id=campaign.organisation_id,
                    message_id=message_id,
                    kind="clicked",
                    at=now,
                    recorded_at=now,
                    source=EventSource.PATIENT,
                    detail={"link": number},
                    provider_event_key=f"click:{number}",
                )
        except IntegrityError:
            pass  # clicked before: the first click is the one that counts
    return HttpResponseRedirect(link.url)
