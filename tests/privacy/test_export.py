"""collect and export: one subject's rows, one organisation's rows, streamed (DSR-6/7 plumbing)."""

import csv
import io
import json

import pytest

from carely.privacy.export import iter_export
from carely.privacy.registry import Subject, registry
from tests.privacy.conftest import EMAIL
from tests.privacy_probe.models import ProbeInvoice, ProbeNote, ProbePatient

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org_a, org_b, make_patient):
    ana = make_patient(org_a, notes='=HYPERLINK("http://evil")')
    bor = make_patient(org_a, first_name="Bor", email="bor@example.si", phone="+38640111222")
    ana_b = make_patient(org_b, first_name="Ana B")
    ProbeNote.objects.create(organisation=org_a, patient=ana, body="+call back")
    ProbeNote.objects.create(organisation=org_b, patient=ana_b, body="at clinic B")
    ProbeInvoice.objects.create(
        organisation=org_a, patient_ref=ana.pk, number="1", amount_cents=100, payer_email=EMAIL
    )
    return {"ana": ana, "bor": bor, "ana_b": ana_b}


def test_collect_returns_only_that_subjects_rows_of_that_organisation(people, org_a, org_b):
    found = registry.collect(Subject("contact", org_a.pk, people["ana"].pk))
    assert set(found) == {
        "privacy_probe.ProbePatient",
        "privacy_probe.ProbeNote",
        "privacy_probe.ProbeInvoice",
    }
    assert [r["first_name"] for r in found["privacy_probe.ProbePatient"]] == ["Ana"]
    assert found["privacy_probe.ProbePatient"][0]["e-mail"] == EMAIL
    assert "email_bidx" not in found["privacy_probe.ProbePatient"][0]
    assert [r["body"] for r in found["privacy_probe.ProbeNote"]] == ["+call back"]
    # Ana B's id at clinic B does not reach clinic A's rows, and vice versa
    at_b = registry.collect(Subject("contact", org_b.pk, people["ana_b"].pk))
    assert [r["body"] for r in at_b["privacy_probe.ProbeNote"]] == ["at clinic B"]
    assert registry.collect(Subject("contact", org_b.pk, people["ana"].pk)) == {}


def _export(scope, **kwargs):
    out = io.StringIO()
    registry.export(scope, out, **kwargs)
    return out.getvalue()


@pytest.mark.obligation("DSR-7")
def test_portability_exports_only_what_the_subject_provided_as_json_and_csv(people, org_a):
    subject = Subject("contact", org_a.pk, people["ana"].pk)
    data = json.loads(_export(subject, format="json", portability=True))
    assert data["portability"] is True
    assert set(data["models"]) == {"privacy_probe.ProbePatient"}
    (row,) = data["models"]["privacy_probe.ProbePatient"]
    assert set(row) == {"id", "first_name", "last_name", "e-mail", "phone", "birth_date", "photo"}
    assert "notes" not in row  # written by staff, not provided by the subject

    rows = list(csv.reader(io.StringIO(_export(subject, format="csv", portability=True))))
    assert rows[0] == ["model", "row_id", "column", "value"]
    assert ["privacy_probe.ProbePatient", str(people["ana"].pk), "e-mail", EMAIL] in rows
    assert {r[2] for r in rows[1:]} == set(row) - {"id"}


def test_csv_cells_cannot_become_formulas(people, org_a):
    text = _export(Subject("contact", org_a.pk, people["ana"].pk), format="csv")
    rows = list(csv.reader(io.StringIO(text)))
    values = {r[2]: r[3] for r in rows[1:] if r[0] == "privacy_probe.ProbePatient"}
    assert values["notes"] == '\'=HYPERLINK("http://evil")'
    assert values["phone"] == "'+386 41 123 456"
    assert [r[0] for r in rows if r[3] == "'+call back"] == ["privacy_probe.ProbeNote"]


def test_an_organisation_export_holds_that_organisation_only(people, org_a):
    data = json.loads(_export(org_a, format="json"))
    names = [r["first_name"] for r in data["models"]["privacy_probe.ProbePatient"]]
    assert names == ["Ana", "Bor"]
    assert [r["body"] for r in data["models"]["privacy_probe.ProbeNote"]] == ["+call back"]
    assert "at clinic B" not in json.dumps(data) and "Ana B" not in json.dumps(data)
    assert data["scope"] == {"organisation_id": org_a.pk}


def test_an_export_streams_in_chunks_with_a_bounded_number_of_queries(
    org_a, django_assert_max_num_queries
):
    ProbePatient.objects.bulk_create(
        [
            ProbePatient(organisation=org_a, first_name=f"P{i}", email=f"p{i}@example.si")
            for i in range(3000)
        ]
    )
    stream = iter_export(registry, org_a, format="csv", chunk_size=500)
    first = next(stream)
    assert first.startswith("model,row_id")
    # Bounded by the registry's size (about one query per declared model) and the number of
    # chunks, never by the number of rows: 3,000 rows in chunks of 500 are 6 reads.
    budget = len(registry.entries()) + 6 + 2
    with django_assert_max_num_queries(budget):
        lines = sum(1 for _ in stream)
    assert lines == 3000 * 7  # seven exported columns per patient row
