"""Two materialiser runs whose batches end in different places (MSG-9): each contact is queued
or excluded once, and counted once, without the writer looking rows up again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import materialise as m
from campaigns.models import Campaign
from campaigns.services import campaign_approve, campaign_start, campaign_submit
from messaging.models import Message


def _sending(campaign, author, approver):
    campaign_submit(campaign=campaign, actor=author)
    campaign_approve(campaign=campaign, actor=approver)
    campaign_start(campaign=campaign)
    return Campaign.objects.select_related("organisation").get(pk=campaign.pk)


@pytest.mark.obligation("MSG-9")
def test_a_run_overtaken_mid_batch_leaves_the_other_runs_contacts_alone(
    campaign, staff_a, admin_a, population
):
    campaign = _sending(campaign, staff_a, admin_a)
    ids = sorted(p.pk for p in population.values())
    # Run A reads its first two batches of 4 before anything is written.
    run_a = m._prepared_batches(campaign, 4, None, None)
    a1, a2 = next(run_a), next(run_a)
    assert (a1.after, a2.after) == (0, a1.cursor)
    # Run B, with batches of 6, writes its first batch: the cursor is now inside A's second.
    report_b = m.MaterialiseReport()
    assert m._apply(campaign, next(m._prepared_batches(campaign, 6, None, None)), report_b)
    assert a1.cursor < Campaign.objects.get(pk=campaign.pk).materialised_through < a2.cursor

    report_a = m.MaterialiseReport()
    assert m._apply(campaign, a1, report_a)  # wholly B's: nothing written, nothing counted
    assert report_a.contacts == 0
    with CaptureQueriesContext(connection) as captured:
        assert m._apply(campaign, a2, report_a)
    queries = [q["sql"] for q in captured.captured_queries]
    assert report_a.contacts == 2  # the 7th and 8th contact; B handled the 5th and 6th
    # No lookup of which contacts have a message already (the cursor says it).
    assert not any(q.startswith('SELECT "messaging_message"."contact_id"') for q in queries)
    # The rest by an ordinary run from the cursor.
    m.campaign_materialise(campaign.pk, batch=4)

    campaign.refresh_from_db()
    rows = list(
        Message.objects.filter(campaign_id=campaign.pk).values_list("contact_id", flat=True)
    )
    assert len(rows) == len(set(rows)) == campaign.queued == 3
    assert campaign.targeted == len(ids)  # every contact counted once
    assert campaign.targeted == campaign.queued + sum(campaign.exclusions.values())
