"""The campaign builder and results in a real browser (MSG-4, MSG-10): the live count follows the
audience and channels without a reload, the preview appears for a chosen template, the results
draw their charts, and no page trips the Content Security Policy.

Screenshots land in var/screenshots/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.materialise import campaign_materialise
from campaigns.services import audience_save, campaign_approve, campaign_create, campaign_submit
from messaging.models import EventSource, Message, MessageEvent
from tests.campaigns.conftest import patient
from tests.consent.conftest import record
from tests.web.conftest import (
    SCREENSHOTS,
    browser_signed_in,
    browser_type_launch_args,  # noqa: F401  (Debian's chromium)
)

pytestmark = [pytest.mark.browser]


@pytest.mark.obligation("MSG-4")
def test_the_builder_counts_live_and_previews(
    transactional_db, live_server, page, org_a, staff_a, population, offer_sms_sl, offer_email_sl
):
    seniors = audience_save(
        organisation=org_a, name="Slovenian speakers", filters={"languages": ["sl"]}, actor=staff_a
    )
    complaints = browser_signed_in(page, live_server, staff_a)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{live_server.url}/campaigns/new/")
    count = page.locator("#audience-count")
    before = count.inner_text()
    assert "Choose an audience" in before
    page.get_by_label("Name", exact=True).fill("December check-ups")
    page.get_by_label("Audience").select_option(label=seniors.name)
    page.get_by_label("Send by").select_option("sms")
    expect(count).to_contain_text("contacts match")
    sms_only = count.inner_text()
    assert "by SMS" in sms_only and "excluded" in sms_only, sms_only
    assert "on the do-not-contact list" in sms_only
    page.get_by_label("then, if not possible, by").select_option("email")
    expect(count).to_contain_text("by e-mail")
    assert count.inner_text() != sms_only
    page.locator("select[name=tpl_sms_sl]").select_option(str(offer_sms_sl.pk))
    page.wait_for_selector(f'.preview[data-template="{offer_sms_sl.pk}"] .preview__text')
    preview = page.locator(f'.preview[data-template="{offer_sms_sl.pk}"]').inner_text()
    assert "Ana, ta mesec popust" in preview and "SMS" in preview
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "campaign_builder.png"), full_page=True)
    # The audience form puts each problem under its field.
    page.goto(f"{live_server.url}/campaigns/audiences/new/")
    page.get_by_label("Name", exact=True).fill("Seniors")
    page.get_by_label("Age from").fill("70")
    page.get_by_label("Age to").fill("40")
    page.get_by_role("button", name="Save audience").click()
    expect(page.locator(".field-error")).to_contain_text("lower than Age from")
    page.screenshot(path=str(SCREENSHOTS / "campaign_audience_form.png"), full_page=True)
    assert not complaints, complaints


@pytest.mark.obligation("MSG-10")
def test_the_results_page_draws_its_charts(
    transactional_db, live_server, page, org_a, staff_a, admin_a, offer_sms_sl
):
    for n in range(40):
        record(patient(org_a, 100 + n), channel="sms")
    everyone = audience_save(organisation=org_a, name="Everyone", filters={}, actor=staff_a)
    campaign = campaign_create(
        organisation=org_a,
        actor=staff_a,
        name="Autumn offer",
        purpose="marketing",
        channels=["sms"],
        audience=everyone,
        templates={("sms", "sl"): offer_sms_sl},
    )
    campaign_submit(campaign=campaign, actor=staff_a)
    campaign_approve(campaign=campaign, actor=admin_a)
    campaign_materialise(campaign.pk)
    campaign.refresh_from_db()
    start = campaign.started_at or timezone.now()
    # Sent over five hours, most delivered within the hour, a few clicks: a realistic shape.
    for i, message in enumerate(Message.objects.filter(campaign_id=campaign.pk).order_by("pk")):
        sent_at = start + dt.timedelta(hours=i % 5, minutes=i)
        delivered = i % 7 != 0
        Message.objects.filter(pk=message.pk).update(
            status="delivered" if delivered else "undeliverable",
            sent_at=sent_at,
            final_at=sent_at + dt.timedelta(minutes=3),
        )
        if i % 4 == 0:
            MessageEvent.objects.create(
                organisation_id=org_a.pk,
                message_id=message.pk,
                kind="clicked",
                at=sent_at + dt.timedelta(minutes=10),
                source=EventSource.PATIENT,
                detail={"link": 1},
            )
    complaints = browser_signed_in(page, live_server, staff_a)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/results/")
    assert page.locator("svg.chart").count() == 2
    assert page.locator("svg.chart rect.bar").count() > 6
    assert page.locator("#funnel-heading").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "campaign_results.png"), full_page=True)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.screenshot(path=str(SCREENSHOTS / "campaign_detail.png"), full_page=True)
    assert not complaints, complaints
