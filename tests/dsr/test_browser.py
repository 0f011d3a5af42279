"""The DPO's request pages in a real browser (DSR-3, DSR-4): the queue with an overdue request
marked, a request opened from it, a code sent to the address on file, the code the person read
out entered, the request granted; no page trips the Content Security Policy.

Screenshots: /tmp/dsr_queue.png, /tmp/dsr_detail.png (and var/screenshots/ for a person to
look at)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dsr.models import DataSubjectRequest, State
from dsr.services import dsr_receive
from messaging.models import Message
from tests.dsr.factories import make_request
from tests.web.conftest import (
    SCREENSHOTS,
    browser_signed_in,
    browser_type_launch_args,  # noqa: F401  (Debian's chromium)
)

pytestmark = [pytest.mark.browser]


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=f"/tmp/{name}.png", full_page=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.obligation("DSR-4", "DSR-3")
def test_dpo_opens_the_queue_sends_a_code_and_decides(
    transactional_db, live_server, page, org_a, dpo_a, ana
):
    now = timezone.now()
    overdue = make_request(
        org_a, received_at=now - dt.timedelta(days=40), state=State.AWAITING_INFORMATION
    )
    make_request(org_a, received_at=now - dt.timedelta(days=27), type="erasure")
    make_request(org_a, received_at=now - dt.timedelta(days=5), type="rectification")
    request = dsr_receive(
        organisation=org_a,
        type="access",
        channel="email",
        subject={"name": "Ana Novak", "email": "ana@example.test"},
        details="Please send me a copy of everything you hold about me.",
    )
    complaints = browser_signed_in(page, live_server, dpo_a)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/dsr/")
    row = page.locator(f'tr[data-reference="{overdue.reference}"]')
    expect(row).to_have_class(re.compile("is-overdue"))
    expect(row).to_contain_text("overdue by")
    expect(page.locator("#overdue-count")).to_contain_text("1")
    _shot(page, "dsr_queue")

    page.get_by_role("link", name=request.reference).click()
    expect(page.locator("h1")).to_contain_text(request.reference)
    expect(page.locator("#subject-heading")).to_be_visible()
    expect(page.get_by_text("Ana Novak").first).to_be_visible()
    _shot(page, "dsr_detail_received")

    page.locator("#action-code-send").get_by_role("button", name="Send code").click()
    expect(page.locator(".message--success")).to_contain_text("Code sent")
    message = Message.objects.filter(contact=ana, purpose="data_subject_request").latest("pk")
    code = re.findall(r"\b\d{6}\b", message.body)[-1]
    page.locator("#action-code-check").get_by_label("Code the subject read out").fill(code)
    page.locator("#action-code-check").get_by_role("button", name="Check code").click()
    expect(page.locator(".message--success")).to_contain_text("Identity verified")

    page.locator("#action-decide").get_by_label("Decision").select_option("granted")
    page.locator("#action-decide").get_by_role("button", name="Record decision").click()
    expect(page.locator(".message--success")).to_contain_text("Decision recorded")
    expect(page.locator("#action-execute")).to_be_visible()
    _shot(page, "dsr_detail")
    request.refresh_from_db()
    assert request.state == State.DECIDED and request.verification_method == "code"
    assert not complaints, complaints


@pytest.mark.obligation("DSR-1")
def test_a_person_files_a_request_on_the_public_form(transactional_db, live_server, page, org_a):
    complaints: list[str] = []
    page.on(
        "console",
        lambda m: complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(f"{live_server.url}/privacy-request/clinic-a/")
    expect(page.locator("html")).to_have_attribute("lang", "sl")
    page.get_by_label("Izbrišite moje podatke").check()
    page.get_by_label("Vaše ime in priimek").fill("Nekdo Neznan")
    page.get_by_label("E-poštni naslov").fill("nekdo@example.test")
    _shot(page, "dsr_public_form")
    # A person takes longer than the form's 3-second minimum.
    page.wait_for_timeout(3200)
    page.get_by_role("button", name="Pošlji zahtevo").click()
    expect(page.locator("h1")).to_contain_text("Hvala")
    expect(page.locator("#id_code")).to_be_visible()
    _shot(page, "dsr_public_verify")
    request = DataSubjectRequest.objects.get()
    assert request.type == "erasure" and request.channel == "form" and request.contact_id is None
    assert not complaints, complaints
