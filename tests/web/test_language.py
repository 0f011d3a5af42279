"""Language switch: kept in the session and on the person, never in a cookie (SEC-9)."""

from __future__ import annotations

import pytest
from django.conf import settings

from carely.web.middleware import LANGUAGE_SESSION_KEY
from tests.conftest import login
from tests.factories import PASSWORD

pytestmark = pytest.mark.obligation("SEC-9")


def test_anonymous_switch_keeps_language_in_session_without_cookie(client, db):
    response = client.post("/language/", {"language": "sl", "next": "/accounts/login/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    assert client.session[LANGUAGE_SESSION_KEY] == "sl"
    page = client.get("/accounts/login/")
    assert page["Content-Language"] == "sl"
    assert '<html lang="sl">' in page.content.decode()


def test_language_chosen_on_login_page_survives_sign_in(client, staff_a):
    client.post("/language/", {"language": "sl", "next": "/accounts/login/"})
    client.post("/accounts/login/", {"login": staff_a.email, "password": PASSWORD})
    assert client.get("/")["Content-Language"] == "sl"


def test_signed_in_switch_is_saved_on_the_person(client, staff_a):
    login(client, staff_a)
    client.post("/language/", {"language": "sl", "next": "/"})
    staff_a.refresh_from_db()
    assert staff_a.preferred_language == "sl"


def test_saved_language_applies_at_next_sign_in(client, staff_a):
    staff_a.preferred_language = "sl"
    staff_a.save()
    client.post("/accounts/login/", {"login": staff_a.email, "password": PASSWORD})
    assert client.get("/")["Content-Language"] == "sl"


def test_unknown_language_and_foreign_next_are_ignored(client, db):
    response = client.post("/language/", {"language": "xx", "next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert LANGUAGE_SESSION_KEY not in client.session


def test_language_switch_is_post_only(client, db):
    assert client.get("/language/?language=sl").status_code == 405


def test_switch_names_each_language_in_its_own_words(client, db):
    client.post("/language/", {"language": "sl", "next": "/"})
    body = client.get("/accounts/login/").content.decode()
    assert ">English</button>" in body and ">Slovenščina</button>" in body
