"""A restriction and a concurrent write (CNT-4): the row lock makes the later one see the
earlier one's result instead of both passing their checks on what each read before.

Two real PostgreSQL connections (threads); SQLite serialises writers, so these are skipped there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from contacts.models import Contact, ContactChange
from contacts.services import (
    ContactRestricted,
    RestrictionError,
    contact_create,
    contact_restrict,
    contact_update,
    contacts_bulk_upsert,
)

pytestmark = [
    pytest.mark.obligation("CNT-4"),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises the two writers")


def _in_thread(work: Callable[[], Any], out: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            out["value"] = work()
        except Exception as exc:  # handed to the test, which asserts on it
            out["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _restrict_and_hold(contact_id: int, entered: threading.Event, release: threading.Event):
    """Restrict in a transaction that stays open until ``release``."""

    def work() -> None:
        with transaction.atomic():
            contact_restrict(contact=Contact.objects.get(pk=contact_id), reason="DSR-1 (test)")
            entered.set()
            release.wait(10)

    return work


def _race(org_a, second: Callable[[Contact], Any]) -> tuple[dict[str, Any], Contact]:
    contact = contact_create(
        organisation=org_a,
        data={"first_name": "Ana", "last_name": "Novak", "email": "ana@primer.si"},
        source_kind="staff",
    )
    stale = Contact.objects.get(pk=contact.pk)  # read before the restriction, as a form would
    entered, release = threading.Event(), threading.Event()
    first: dict[str, Any] = {}
    restricting = _in_thread(_restrict_and_hold(contact.pk, entered, release), first)
    try:
        assert entered.wait(10)
        out: dict[str, Any] = {}
        writing = _in_thread(lambda: second(stale), out)
        writing.join(0.5)
        assert writing.is_alive(), "the write must wait for the restriction's transaction"
    finally:
        release.set()
    restricting.join(10)
    writing.join(10)
    assert "error" not in first, first
    return out, contact


def test_an_edit_that_waited_on_a_restriction_is_refused(org_a):
    out, contact = _race(
        org_a, lambda stale: contact_update(contact=stale, data={"last_name": "Kos"})
    )
    assert isinstance(out.get("error"), ContactRestricted), out
    fresh = Contact.objects.get(pk=contact.pk)
    assert fresh.is_restricted and fresh.last_name == "Novak"
    assert not ContactChange.objects.filter(contact=contact, kind="rectification").exists()


def test_a_second_restriction_that_waited_is_refused(org_a):
    out, contact = _race(org_a, lambda stale: contact_restrict(contact=stale, reason="again"))
    assert isinstance(out.get("error"), RestrictionError), out
    assert "already restricted" in str(out["error"])
    assert ContactChange.objects.filter(contact=contact, kind="restricted").count() == 1


def test_an_import_row_that_waited_on_a_restriction_is_rejected(org_a):
    out, contact = _race(
        org_a,
        lambda stale: contacts_bulk_upsert(
            organisation=org_a,
            rows=[{"email": "ana@primer.si", "last_name": "Kos"}],
            source_kind="import",
        ),
    )
    assert "error" not in out, out
    (result,) = out["value"]
    assert result.status == "rejected" and "restricted" in result.errors["contact"][0]
    assert Contact.objects.get(pk=contact.pk).last_name == "Novak"
