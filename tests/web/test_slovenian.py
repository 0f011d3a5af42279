"""The UI in Slovenian: every marked string has a real translation, and pages use it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import login
from tests.factories import PASSWORD

PO = Path(__file__).resolve().parents[2] / "carely" / "locale" / "sl" / "LC_MESSAGES" / "django.po"


def _entries() -> list[tuple[str, str]]:
    text = PO.read_text(encoding="utf-8")
    pairs = []
    for block in text.split("\n\n"):
        head, sep, tail = block.partition("\nmsgstr")
        tail = sep.lstrip() + tail
        msgid = "".join(re.findall(r'^(?:msgid )?"(.*)"$', head, re.M))
        # msgstr may be wrapped over several lines (msgstr "" then "..." lines), as
        # makemessages writes long ones.
        msgstr = "".join(re.findall(r'^(?:msgstr(?:\[\d\])? |(?:\[\d\] ))?"(.*)"$', tail, re.M))
        if msgid and "#, fuzzy" not in block:
            pairs.append((msgid, msgstr))
    return pairs


def test_every_string_has_a_slovenian_translation():
    entries = _entries()
    assert len(entries) > 100
    untranslated = [msgid for msgid, msgstr in entries if not msgstr]
    assert not untranslated, untranslated


def _unescape(po_string: str) -> str:
    return po_string.replace('\\"', '"').replace("\\n", "\n")


def test_compiled_catalogue_matches_the_source():
    import gettext

    with PO.with_suffix(".mo").open("rb") as fh:
        catalogue = gettext.GNUTranslations(fh)
    stale = [
        msgid
        for msgid, msgstr in _entries()
        if "%" not in msgstr and catalogue.gettext(_unescape(msgid)) == _unescape(msgid)
    ]
    assert not stale, "run `manage.py compilemessages`: " + ", ".join(stale[:5])


def test_dashboard_in_slovenian(client, admin_a):
    login(client, admin_a)
    client.post("/language/", {"language": "sl", "next": "/"})
    body = client.get("/").content.decode()
    assert "Nadzorna plošča" in body
    assert "Skrbnik organizacije" in body
    assert "Odjava" in body


@pytest.mark.obligation("SEC-1")
def test_lockout_page_in_slovenian_uses_the_right_plural(client, staff_a):
    client.post("/language/", {"language": "sl", "next": "/accounts/login/"})
    for n in range(5):
        client.post("/accounts/login/", {"login": staff_a.email, "password": f"wrong {n}"})
    response = client.post("/accounts/login/", {"login": staff_a.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Poskusite znova čez 15 minut." in response.content.decode()


@pytest.mark.obligation("SEC-1")
def test_neutral_login_error_in_slovenian(client, staff_a):
    client.post("/language/", {"language": "sl", "next": "/accounts/login/"})
    response = client.post("/accounts/login/", {"login": "x@example.test", "password": "nope"})
    assert "se ne ujemata z nobenim računom" in response.content.decode()
