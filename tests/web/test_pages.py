"""Dashboard content, the suspension notice and the error pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import login

pytestmark = pytest.mark.obligation("SEC-2")


def test_dashboard_shows_organisation_role_and_links(client, admin_a):
    login(client, admin_a)
    body = client.get("/").content.decode()
    assert "Clinic A" in body
    assert "Organisation admin" in body
    assert 'href="/members/"' in body


def test_suspended_organisation_gets_a_calm_notice(client, staff_a, org_a):
    org_a.suspended_at = timezone.now()
    org_a.suspension_reason = "invoice 2025-014 unpaid"
    org_a.save()
    login(client, staff_a)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "This organisation is suspended" in body
    assert "invoice 2025-014 unpaid" in body
    assert "Nothing has been deleted" in body


def test_no_suspension_notice_otherwise(client, staff_a):
    login(client, staff_a)
    assert "suspended" not in client.get("/").content.decode()


def test_csrf_failure_page_is_plain_and_styled(db, staff_a):
    strict = Client(enforce_csrf_checks=True)
    login(strict, staff_a)
    response = strict.post("/language/", {"language": "sl"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "That form had expired" in body
    assert "/static/web/carely.css" in body
    assert "Content-Security-Policy" in response


def test_signing_out_is_post_only_and_ends_the_session(client, staff_a):
    login(client, staff_a)
    page = client.get("/accounts/logout/")
    assert page.status_code == 200  # a confirmation page, not a sign-out on GET
    assert "_auth_user_id" in client.session
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302
