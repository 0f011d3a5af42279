"""The patient's unsubscribe and preference pages in a real browser (CON-2): no CSP complaint,
the switches work without JavaScript, and the pages read in the clinic's name.

Screenshots land in test-results/ for a person to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from consent.links import unsubscribe_url
from consent.selectors import consent_states
from tests.consent.conftest import make_contact, record
from tests.factories import OrganisationFactory
from tests.web.conftest import browser_type_launch_args  # noqa: F401  (Debian's chromium)

pytestmark = [pytest.mark.browser, pytest.mark.obligation("CON-2")]

RESULTS = Path(__file__).resolve().parents[2] / "test-results"


def test_unsubscribe_then_preferences_in_the_browser(live_server, page, transactional_db):
    clinic = OrganisationFactory(name="Zobna ambulanta Bled", slug="zobna-bled")
    contact = make_contact(
        clinic, first_name="Maja", email="maja@example.test", preferred_language="en"
    )
    record(contact)
    record(contact, purpose="surveys", channel="email")
    csp_complaints: list[str] = []
    page.on(
        "console",
        lambda m: csp_complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    path = re.sub(r"^https?://[^/]+", "", unsubscribe_url(contact, "marketing"))
    page.goto(f"{live_server.url}{path}")
    assert page.get_by_role(
        "heading", name="Stop marketing messages from Zobna ambulanta Bled?"
    ).is_visible()
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "consent-unsubscribe.png"), full_page=True)

    page.get_by_role("button", name="Yes, unsubscribe").click()
    # The click submits a form: wait for the answer page instead of looking at once (is_visible
    # does not wait, and on a busy machine the old page was still there).
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    page.screenshot(path=str(RESULTS / "consent-unsubscribed.png"), full_page=True)

    page.get_by_role("link", name="See or change all your choices").click()
    page.wait_for_url("**/preferences/")
    surveys_sms = page.locator("#id_surveys__sms")
    assert page.locator("#id_surveys__email").is_checked()
    assert not page.locator("#id_marketing__email").is_checked()
    surveys_sms.check()
    page.wait_for_timeout(300)  # the switch's short slide, so the screenshot shows it settled
    page.screenshot(path=str(RESULTS / "consent-preferences.png"), full_page=True)
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url("**/preferences/?saved=1")
    assert page.get_by_text("Your choices are saved.").is_visible()
    assert page.locator("#id_surveys__sms").is_checked()
    page.screenshot(path=str(RESULTS / "consent-preferences-saved.png"), full_page=True)

    states = consent_states(organisation=clinic, contact_ids=[contact.pk])[contact.pk]
    assert states[("marketing", "email")].status == "withdrawn"
    assert states[("surveys", "sms")].status == "given"
    assert not csp_complaints, csp_complaints
