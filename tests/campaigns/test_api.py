"""``/api/v1/campaigns/`` and a campaign's statistics (MSG-10, TEN-1, SEC-3): scopes, tenancy,
pagination, the ?state= filter, masked statistics, and the schema that documents them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from campaigns.models import Campaign
from campaigns.services import campaign_approve, campaign_create, campaign_submit
from campaigns.stats import MASK
from tests.campaigns.test_stats import outcome  # noqa: F401 - the fixture, shared
from tests.consent.conftest import api_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"


@pytest.fixture
def api_a(org_a):
    return api_client(org_a, scopes=["campaigns:read"])


@pytest.fixture
def api_b(org_b):
    return api_client(org_b)


def more_campaigns(org, actor, audience, templates, n):
    return [
        campaign_create(
            organisation=org,
            actor=actor,
            name=f"Campaign {i}",
            purpose="marketing",
            channels=["sms"],
            audience=audience,
            templates=templates,
        )
        for i in range(n)
    ]


def test_the_list_shows_each_campaign_with_its_audience_and_progress(api_a, campaign, everyone):
    response = api_a.get(URL)
    assert response.status_code == 200, response.json()
    (item,) = response.json()["results"]
    assert item["id"] == campaign.pk and item["name"] == "November check-ups"
    assert item["state"] == "draft" and item["channels"] == ["sms"]
    assert item["purpose"] == "marketing" and item["schedule"] == "now"
    assert item["audience"] == {"id": everyone.pk, "name": "Everyone"}
    assert item["progress"] == {"audience_total": 0, "targeted": 0, "queued": 0}
    for key in ("send_at", "send_until", "created_at", "approved_at", "started_at", "finished_at"):
        assert key in item
    detail = api_a.get(f"{URL}{campaign.pk}/")
    assert detail.status_code == 200 and detail.json() == item


def test_pages_and_the_state_filter(
    api_a, org_a, staff_a, admin_a, campaign, everyone, offer_sms_sl, offer_sms_en
):
    templates = {("sms", "sl"): offer_sms_sl, ("sms", "en"): offer_sms_en}
    more_campaigns(org_a, staff_a, everyone, templates, 4)
    campaign_submit(campaign=campaign, actor=staff_a)
    first = api_a.get(URL, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    seen = [c["id"] for c in first["results"]]
    page = first
    while page["next"]:
        page = api_a.get(page["next"]).json()
        seen += [c["id"] for c in page["results"]]
    assert sorted(seen) == sorted(Campaign.objects.values_list("pk", flat=True))
    assert len(seen) == 5
    waiting = api_a.get(URL, {"state": "awaiting_approval"}).json()["results"]
    assert [c["id"] for c in waiting] == [campaign.pk]
    bad = api_a.get(URL, {"state": "sent"})
    assert bad.status_code == 400
    assert "state" in str(bad.json()["errors"]) and "awaiting_approval" in str(bad.json())


def test_the_list_costs_the_same_queries_for_two_or_twenty(
    api_a, org_a, staff_a, everyone, offer_sms_sl, offer_sms_en
):
    templates = {("sms", "sl"): offer_sms_sl, ("sms", "en"): offer_sms_en}
    more_campaigns(org_a, staff_a, everyone, templates, 2)
    api_a.get(URL)  # the key's first use writes its last-used time once
    with CaptureQueriesContext(connection) as two:
        api_a.get(URL)
    more_campaigns(org_a, staff_a, everyone, templates, 18)
    with CaptureQueriesContext(connection) as twenty:
        assert len(api_a.get(URL).json()["results"]) == 20
    assert len(two) == len(twenty)


@pytest.mark.obligation("SEC-3")
def test_a_key_without_campaigns_read_is_refused(org_a, campaign):
    others = api_client(org_a, scopes=["contacts:read", "messages:read", "campaigns:write"])
    for path in (URL, f"{URL}{campaign.pk}/", f"{URL}{campaign.pk}/stats"):
        response = others.get(path)
        assert response.status_code == 403, path
        assert "campaigns:read" in response.json()["detail"]
    assert APIClient().get(f"{URL}{campaign.pk}/stats").status_code == 401
    # Read only: no write method, whatever the key's scopes.
    assert api_client(org_a).post(URL, {}, format="json").status_code == 405


@pytest.mark.obligation("TEN-1")
def test_another_organisations_campaign_is_a_404(api_b, campaign):
    assert api_b.get(URL).json()["results"] == []
    assert api_b.get(f"{URL}{campaign.pk}/").status_code == 404
    assert api_b.get(f"{URL}{campaign.pk}/stats").status_code == 404
    assert api_b.get(f"{URL}{campaign.pk}/stats/").status_code == 404


@pytest.mark.obligation("MSG-10")
def test_stats_are_masked_aggregates(api_a, campaign, outcome):  # noqa: F811
    response = api_a.get(f"{URL}{campaign.pk}/stats")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert api_a.get(f"{URL}{campaign.pk}/stats/").json()["counts"] == data["counts"]
    assert data["campaign"] == campaign.pk and data["state"] == "sending"
    counts = data["counts"]
    assert counts["queued"] == 15 and counts["sent"] == 10 and counts["delivered"] == 6
    assert counts["clicked"] == MASK and counts["conversions"] == MASK
    assert counts["cancelled"] == MASK and counts["unsubscribed"] == 0
    assert data["excluded"]["frequency_cap"] == MASK
    assert data["by_channel"]["sms"]["sent"] == 10
    assert data["by_channel"]["sms"]["undeliverable"] == MASK
    assert [f["step"] for f in data["funnel"]] == [
        "targeted",
        "queued",
        "sent",
        "delivered",
        "clicked",
        "converted",
    ]
    assert data["series"][0]["width"] == "hour" and data["series"][0]["sent"] == MASK

    def numbers(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from numbers(v)
        elif isinstance(value, list):
            for v in value:
                yield from numbers(v)
        elif isinstance(value, int) and not isinstance(value, bool):
            yield value

    stripped = {k: v for k, v in data.items() if k != "campaign"}
    assert [n for n in numbers(stripped) if 0 < n < 5] == []


def test_the_schema_documents_the_stats_fields(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/campaigns/{id}/stats" in schema["paths"]
    assert "/api/v1/campaigns/{id}/stats/" not in schema["paths"]
    stats = schema["components"]["schemas"]["CampaignStats"]
    assert set(stats["properties"]) >= {"counts", "excluded", "by_channel", "funnel", "series"}
    counts = schema["components"]["schemas"]["StatsCounts"]["properties"]
    for field in ("sent", "delivered", "undeliverable", "conversions", "unsubscribed"):
        assert counts[field]["description"], field
        assert {"type": "string", "enum": [MASK]} in counts[field]["oneOf"]


def test_approved_campaigns_show_when(api_a, campaign, staff_a, admin_a):
    campaign_submit(campaign=campaign, actor=staff_a)
    campaign_approve(campaign=campaign, actor=admin_a)
    item = api_a.get(f"{URL}{campaign.pk}/").json()
    assert item["state"] in ("scheduled", "sending") and item["approved_at"]
