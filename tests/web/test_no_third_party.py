"""Nothing the web UI serves makes the browser contact another host; only two cookies (SEC-9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from carely.web.middleware import CONTENT_SECURITY_POLICY
from tests.conftest import login
from tests.factories import PASSWORD
from tests.web.conftest import give_totp
from tests.web.htmlscan import css_urls, is_foreign, scan

pytestmark = pytest.mark.obligation("SEC-9")

ANONYMOUS_PAGES = [
    "/accounts/login/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/no-such-page/",
    "/api/docs/",
]
SIGNED_IN_PAGES = ["/", "/members/", "/accounts/logout/", "/accounts/2fa/", "/no-such-page/"]


def _check_page(client, path: str, expected=(200, 403, 404)) -> list[str]:
    """Fetch ``path``; return its URLs after asserting none is foreign and the CSP is set."""
    response = client.get(path)
    assert response.status_code in expected, (path, response.status_code)
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
    html = response.content.decode()
    found = scan(html)
    urls = found.urls + css_urls(html)
    foreign = [u for u in urls if is_foreign(u)]
    assert not foreign, (path, foreign)
    # The CSP would block these anyway; the page must not depend on them.
    assert not found.inline_scripts, (path, found.inline_scripts)
    if not path.startswith("/api/docs/"):
        assert not found.inline_styles, (path, found.inline_styles)
    return urls


def _crawl(client, start: list[str]) -> set[str]:
    """Visit every same-site GET link reachable from ``start`` (two levels deep)."""
    seen: set[str] = set()
    frontier = list(start)
    for _depth in range(2):
        next_frontier = []
        for path in frontier:
            if path in seen:
                continue
            seen.add(path)
            for url in _check_page(client, path, expected=(200, 302, 403, 404, 405)):
                target = url.split("#")[0]
                if target.startswith("/") and not target.startswith(("/static/", "//")):
                    next_frontier.append(target)
        frontier = next_frontier
    return seen


def test_anonymous_pages_load_nothing_from_other_hosts(client, db):
    for path in ANONYMOUS_PAGES:
        _check_page(client, path)


def test_mfa_pages_load_nothing_from_other_hosts(client, admin_a):
    client.post("/accounts/login/", {"login": admin_a.email, "password": PASSWORD})
    _check_page(client, "/accounts/2fa/totp/activate/")
    give_totp(admin_a)
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"login": admin_a.email, "password": PASSWORD})
    _check_page(client, reverse("mfa_authenticate"))


@pytest.mark.parametrize(
    "persona", ["staff_a", "admin_a", "dpo_a", "admin_b", "operator", "platform_dpo"]
)
def test_every_page_a_persona_reaches_loads_nothing_from_other_hosts(
    client, request, persona, staff_a, org_a
):
    login(client, request.getfixturevalue(persona))
    member = staff_a.memberships.get(organisation=org_a).pk
    seen = _crawl(client, [*SIGNED_IN_PAGES, f"/members/{member}/"])
    assert "/" in seen


def test_error_pages_carry_the_policy(client, staff_a):
    login(client, staff_a)
    for path, status in (("/members/", 403), ("/definitely-missing/", 404)):
        response = client.get(path)
        assert response.status_code == status
        assert "Content-Security-Policy" in response
        assert reverse("web:dashboard") in response.content.decode()


def test_security_headers(client, db):
    response = client.get("/accounts/login/")
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "script-src 'self';" in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"]
    assert "interest-cohort=()" in response["Permissions-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_swagger_ui_is_served_from_the_app(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    found = scan(response.content.decode())
    scripts = [u for u in found.urls if u.endswith(".js") or "script" in u]
    assert scripts and all(u.startswith("/") for u in scripts), scripts
    assert not found.inline_styles and not found.inline_scripts
    init = client.get("/api/docs/?script=")
    assert init.status_code == 200
    assert "SwaggerUIBundle" in init.content.decode()


def _our_css_files() -> list[Path]:
    root = Path(finders.find("web/carely.css")).parent
    return sorted(root.rglob("*.css"))


def test_stylesheets_reference_no_other_host_and_no_web_font(client, db):
    files = _our_css_files()
    assert files
    for css in files:
        text = css.read_text()
        foreign = [u for u in css_urls(text) if is_foreign(u)]
        assert not foreign, (css.name, foreign)
        assert "@font-face" not in text, css.name


def test_every_stylesheet_a_page_links_is_served_by_the_app(client, staff_a):
    login(client, staff_a)
    for url in scan(client.get("/").content.decode()).urls:
        if url.startswith("/static/"):
            asset = client.get(url)
            assert asset.status_code == 200, url
            if url.endswith(".css"):
                body = b"".join(asset.streaming_content).decode()
                assert not [u for u in css_urls(body) if is_foreign(u)]


def test_only_session_and_csrf_cookies_across_a_whole_visit(client, staff_a):
    seen: set[str] = set()

    def record(response):
        seen.update(response.cookies.keys())
        return response

    record(client.get("/accounts/login/"))
    record(client.post("/language/", {"language": "sl", "next": "/accounts/login/"}))
    record(client.get("/accounts/login/"))
    record(client.post("/accounts/login/", {"login": staff_a.email, "password": "wrong one"}))
    record(client.post("/accounts/login/", {"login": staff_a.email, "password": PASSWORD}))
    record(client.get("/"))
    record(client.post("/language/", {"language": "en", "next": "/"}))
    record(client.get("/"))
    record(client.get("/no-such-page/"))
    record(client.post("/accounts/logout/"))
    record(client.get("/accounts/login/"))
    assert seen <= {"sessionid", "csrftoken"}, seen
    assert "sessionid" in seen and "csrftoken" in seen
    assert set(client.cookies.keys()) <= {"sessionid", "csrftoken"}
