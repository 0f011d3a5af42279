"""``contact_values``: the few decrypted columns a batch of messages reads, one organisation's
contacts only (TEN-1)."""

from __future__ import annotations

import pytest

from contacts.selectors import ContactValues, contact_values
from contacts.services import contact_create

pytestmark = pytest.mark.django_db


def _create(org, **data):
    return contact_create(organisation=org, data=data, source_kind="staff")


@pytest.mark.obligation("TEN-1")
def test_another_organisations_contact_is_absent_and_only_asked_fields_are_loaded(org_a, org_b):
    ana = _create(org_a, first_name="Ana", last_name="Novak", phone="+38641123456")
    bor = _create(org_b, first_name="Bor", last_name="Kos", phone="+38641123457")

    found = contact_values(organisation=org_a, ids=[ana.pk, bor.pk], fields={"first_name"})

    assert list(found) == [ana.pk]  # the other clinic's id is simply not there
    values = found[ana.pk]
    assert isinstance(values, ContactValues)
    assert (values.pk, values.organisation_id, values.first_name) == (ana.pk, org_a.pk, "Ana")
    # Not asked, so not decrypted: empty rather than another column's value.
    assert (values.last_name, values.phone, values.email) == ("", "", "")


def test_an_unknown_field_is_refused_by_name(org_a):
    with pytest.raises(ValueError, match="birth_date"):
        contact_values(organisation=org_a, ids=[1], fields={"birth_date"})
    assert contact_values(organisation=org_a, ids=[], fields={"phone"}) == {}
