"""The template preview in a real browser (MSG-3): no CSP complaint, the sample form works without
JavaScript, and an SMS shows its encoding, the letters that force UCS-2 and its parts.

The screenshot lands in test-results/ for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from messaging.services import template_save
from tests.conftest import login
from tests.factories import MembershipFactory, OrganisationFactory
from tests.web.conftest import browser_type_launch_args  # noqa: F401  (Debian's chromium)

pytestmark = [pytest.mark.browser, pytest.mark.obligation("MSG-3")]

RESULTS = Path(__file__).resolve().parents[2] / "test-results"


def test_template_preview_in_the_browser(live_server, page, transactional_db):
    clinic = OrganisationFactory(name="Zobna ambulanta Bled", slug="zobna-bled")
    staff = MembershipFactory(organisation=clinic, role="staff").user
    template = template_save(
        organisation=clinic,
        name="opomnik-24h",
        kind="transactional",
        channel="sms",
        language="sl",
        body="Spoštovani {{ first_name }}, vaš pregled v {{ organisation_name }} je jutri ob "
        "{{ ura }}. Če ne morete priti, nas pokličite.",
        variables=["ura"],
    )
    client = Client()
    login(client, staff)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    csp_complaints: list[str] = []
    page.on(
        "console",
        lambda m: csp_complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/messages/templates/{template.pk}/")
    assert page.get_by_text("No value for {{ ura }}.").is_visible()
    page.get_by_label("Sample values").fill("ura=9.00")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/?sample=*")
    assert page.locator("#preview-encoding").inner_text() == "UCS-2"
    assert page.locator("#preview-non-gsm").inner_text() == "š Č č"
    assert page.locator("#preview-parts").inner_text() == "2"
    assert (
        "Spoštovani Ana, vaš pregled v Zobna ambulanta Bled"
        in page.locator("#preview-text").inner_text()
    )
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "messaging-template-preview.png"), full_page=True)
    assert not csp_complaints, csp_complaints
