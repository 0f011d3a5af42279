"""The forked reader (PostgreSQL, large campaigns) writes exactly what the serial path does."""

from __future__ import annotations

import pytest
from django.db import connection

from campaigns.links import click_url_maker
from campaigns.materialise import campaign_materialise
from campaigns.models import CampaignLink
from campaigns.services import campaign_approve, campaign_submit
from messaging.models import Message


@pytest.mark.postgres
@pytest.mark.obligation("MSG-4", "MSG-9")
def test_the_forked_reader_queues_the_same_rows_and_counts(
    transactional_db, settings, campaign, staff_a, admin_a, population, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    settings.CAMPAIGN_MATERIALISE_FORK_MIN_CONTACTS = 0
    from campaigns import materialise

    forks = []
    real = materialise._prepared_batches_forked

    def spy(*args, **kwargs):
        forks.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(materialise, "_prepared_batches_forked", spy)
    campaign_submit(campaign=campaign, actor=staff_a)
    campaign_approve(campaign=campaign, actor=admin_a)
    report = campaign_materialise(campaign.pk, batch=4, track_links=click_url_maker(campaign.pk))
    assert report.finished
    assert forks == [1]
    campaign.refresh_from_db()
    queued = Message.objects.filter(campaign_id=campaign.pk)
    assert set(queued.values_list("contact_id", flat=True)) == {
        population[k].pk for k in ("ok", "ok_all", "minor_ok")
    }
    assert campaign.queued == 3
    assert campaign.targeted == len(population)
    assert campaign.exclusions == {
        "no_consent": 3,
        "withdrawn": 1,
        "suppressed": 1,
        "restricted": 1,
        "no_address": 1,
        "objection": 1,
        "lapsed": 1,
        "minor_without_guardian_consent": 1,
    }
    # The link the reader numbered was written with the batch that used it.
    assert list(CampaignLink.objects.filter(campaign=campaign).values_list("number", "url")) == [
        (1, "https://klinika.example/akcija")
    ]
    assert all("/r/" in m.body for m in queued)
    # A second run finds nothing left to do.
    assert campaign_materialise(campaign.pk).queued == 0
    assert queued.count() == 3
