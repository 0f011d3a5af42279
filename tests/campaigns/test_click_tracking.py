"""Click tracking through the platform's own signed redirect (MSG-6, MSG-10)."""

from __future__ import annotations

import pytest

from campaigns.links import click_token_make, click_url_maker
from campaigns.materialise import campaign_materialise
from campaigns.services import campaign_approve, campaign_submit
from messaging.models import Message, MessageEvent


@pytest.mark.obligation("MSG-6", "MSG-10")
def test_links_go_through_the_redirect_which_records_the_first_click(
    client, campaign, staff_a, admin_a, population
):
    campaign_submit(campaign=campaign, actor=staff_a)
    campaign_approve(campaign=campaign, actor=admin_a)
    campaign_materialise(campaign.pk, track_links=click_url_maker(campaign.pk))
    message = Message.objects.get(campaign_id=campaign.pk, contact=population["ok"])
    assert "https://klinika.example/akcija" not in message.body
    tracked = next(w for w in message.body.split() if "/r/" in w)
    assert tracked.startswith("https://pep.example.test/r/")
    path = tracked.removeprefix("https://pep.example.test")

    first = client.get(path)
    assert first.status_code == 302
    assert first["Location"] == "https://klinika.example/akcija"
    client.get(path)
    clicks = MessageEvent.objects.filter(message=message, kind="clicked")
    assert clicks.count() == 1
    assert clicks.get().detail == {"link": 1}


def test_a_forged_or_altered_token_is_refused(client, campaign, population):
    token = click_token_make(campaign.pk, population["ok"].pk, 1)
    body, _mac = token.rsplit(".", 1)
    other = click_token_make(campaign.pk, population["no_consent"].pk, 1).rsplit(".", 1)[1]
    assert client.get(f"/r/{body}.{other}/").status_code == 404
    assert client.get("/r/not-a-token/").status_code == 404
    assert not MessageEvent.objects.filter(kind="clicked").exists()


def test_the_builder_preview_counts_parts_with_the_tracked_link(org_a, offer_sms_sl):
    """The part count the clinic sees is the one it pays for: links go out as redirects."""
    from campaigns.views import _previews

    [preview] = _previews(org_a, [offer_sms_sl.pk])
    body = preview["preview"].body
    assert "https://klinika.example/akcija" not in body
    assert "https://pep.example.test/r/" in body
