"""A real browser signs in through the real form and talks to nobody but us (SEC-9).

Debian's chromium drives the live server. Every request the page makes is recorded, and so is every
Content-Security-Policy complaint: an inline script or style we forgot would show up there.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.obligation("SEC-9")]

RESULTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture
def demo_staff(transactional_db, settings, tmp_path):
    """The demo staff login that `make run` prints, created by the real bootstrap command."""
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("bootstrap_demo", "--json", stdout=out)
    people = json.loads(out.getvalue())["users"]
    return next(p for p in people if p["role"] == "staff")


def test_demo_staff_signs_in_and_the_browser_only_talks_to_us(live_server, page, demo_staff):
    requests: list[str] = []
    csp_complaints: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on(
        "console",
        lambda m: csp_complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )

    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "login.png"))
    page.get_by_label("E-mail address").fill(demo_staff["email"])
    page.get_by_label("Password").fill(demo_staff["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Hello")
    assert page.get_by_text("Demo Clinic").first.is_visible()

    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "dashboard.png"), full_page=True)

    # Slovenian through the language switch, then sign out through the POST form.
    page.get_by_role("button", name="Slovenščina").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "sl"
    page.set_viewport_size({"width": 390, "height": 800})
    page.screenshot(path=str(RESULTS / "dashboard-sl-narrow.png"), full_page=True)
    page.locator("form.sign-out button").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")

    own_host = urlsplit(live_server.url).netloc
    foreign = [u for u in requests if not u.startswith("data:") and urlsplit(u).netloc != own_host]
    assert requests and not foreign, foreign
    assert not csp_complaints, csp_complaints
    cookies = {c["name"] for c in page.context.cookies()}
    assert cookies <= {"sessionid", "csrftoken"}, cookies


def test_swagger_ui_runs_under_the_strict_policy(live_server, page, transactional_db):
    """SpectacularSwaggerSplitView serves its init script as a file, so no relaxation is needed."""
    requests: list[str] = []
    csp_complaints: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on(
        "console",
        lambda m: csp_complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".swagger-ui .info .title").wait_for(timeout=15000)
    assert "Carely PEP API" in page.locator(".swagger-ui .info .title").inner_text()
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "api-docs.png"))
    own_host = urlsplit(live_server.url).netloc
    foreign = [u for u in requests if not u.startswith("data:") and urlsplit(u).netloc != own_host]
    assert not foreign, foreign
    assert not csp_complaints, csp_complaints
