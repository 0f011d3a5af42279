"""The CSV import screens in a real browser (CNT-2): no CSP complaint, the progress script runs.

Screenshots of the mapping and result screens land in test-results/ for a person to look at.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from contacts.tasks import contact_import_run_task
from tests.contacts.test_import_views import _acceptance_csv
from tests.web.conftest import browser_type_launch_args  # noqa: F401  (Debian's chromium)

pytestmark = [pytest.mark.browser, pytest.mark.obligation("CNT-2")]

RESULTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture
def demo_staff(transactional_db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    out = io.StringIO()
    call_command("bootstrap_demo", "--json", stdout=out)
    people = json.loads(out.getvalue())["users"]
    return next(p for p in people if p["role"] == "staff")


def test_import_screens_in_the_browser(live_server, page, demo_staff, tmp_path, monkeypatch):
    queued: list[int] = []
    # No worker here: the test plays the worker once the progress page is polling.
    monkeypatch.setattr(contact_import_run_task, "delay", queued.append)
    csp_complaints: list[str] = []
    page.on(
        "console",
        lambda m: csp_complaints.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/contacts/import/")
    page.get_by_label("E-mail address").fill(demo_staff["email"])
    page.get_by_label("Password").fill(demo_staff["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/contacts/import/")

    csv_file = tmp_path / "pacienti.csv"
    csv_file.write_bytes(_acceptance_csv())
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Upload and choose columns").click()
    page.wait_for_url("**/columns/")
    assert page.get_by_text("Windows-1250").is_visible()
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "import-mapping.png"), full_page=True)

    page.get_by_role("button", name="Start the import").click()
    page.wait_for_url("**/progress/")
    assert page.locator("progress#import-progress").is_visible()
    page.screenshot(path=str(RESULTS / "import-progress.png"), full_page=True)
    contact_import_run_task(queued.pop())
    # import-progress.js polls the status and opens the result page when the job is done.
    page.wait_for_url("**/import/*/", timeout=15000)
    assert page.locator("#count-created").inner_text() == "2"
    assert page.locator("#rejected-rows tbody tr").count() == 5
    page.screenshot(path=str(RESULTS / "import-result.png"), full_page=True)
    assert not csp_complaints, csp_complaints
