"""API keys see only their own organisation's rows (TEN-1), through the scoped viewset base."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.tenancy_probe.models import ProbeRecord

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("TEN-1")]

PROBE = "/api/v1/probe/records"


@pytest.fixture
def record_a(org_a):
    return ProbeRecord.objects.create(organisation=org_a, label="A's record")


@pytest.fixture
def record_b(org_b):
    return ProbeRecord.objects.create(organisation=org_b, label="B's record")


def test_another_organisations_row_is_not_found_for_read_update_or_delete(api_b, record_a):
    url = f"{PROBE}/{record_a.pk}"
    for response in (
        api_b.get(url),
        api_b.put(url, {"label": "taken"}, format="json"),
        api_b.patch(url, {"label": "taken"}, format="json"),
        api_b.delete(url),
    ):
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
    record_a.refresh_from_db()
    assert record_a.label == "A's record"  # the denied calls changed nothing


def test_own_rows_can_be_read_updated_and_deleted(api_a, record_a):
    url = f"{PROBE}/{record_a.pk}"
    assert api_a.get(url).json() == {"id": record_a.pk, "label": "A's record"}
    assert api_a.patch(url, {"label": "renamed"}, format="json").status_code == 200
    assert ProbeRecord.objects.get(pk=record_a.pk).label == "renamed"
    assert api_a.delete(url).status_code == 204
    assert not ProbeRecord.objects.filter(pk=record_a.pk).exists()


def test_lists_hold_only_own_rows(api_a, api_b, org_a, record_a, record_b):
    ProbeRecord.objects.bulk_create(
        ProbeRecord(organisation=org_a, label=f"a{i}") for i in range(3)
    )
    labels_a = [r["label"] for r in api_a.get(PROBE).json()["results"]]
    assert labels_a == ["a2", "a1", "a0", "A's record"]  # newest first
    assert [r["label"] for r in api_b.get(PROBE).json()["results"]] == ["B's record"]


def test_list_reveals_no_count_and_pages_by_cursor(api_a, org_a):
    ProbeRecord.objects.bulk_create(
        ProbeRecord(organisation=org_a, label=f"a{i}") for i in range(5)
    )
    first = api_a.get(PROBE, {"page_size": 2}).json()
    assert set(first) == {"next", "previous", "results"}  # no "count" across anything
    assert [r["label"] for r in first["results"]] == ["a4", "a3"]
    second = api_a.get(first["next"]).json()
    assert [r["label"] for r in second["results"]] == ["a2", "a1"]


def test_page_size_is_capped(api_a, org_a):
    ProbeRecord.objects.bulk_create(
        ProbeRecord(organisation=org_a, label=f"a{i}") for i in range(205)
    )
    assert len(api_a.get(PROBE).json()["results"]) == 50
    assert len(api_a.get(PROBE, {"page_size": 1000}).json()["results"]) == 200


def test_list_query_count_is_constant(api_a, org_a, django_assert_num_queries):
    api_a.get(PROBE)  # the first request of the minute also records the key's last use
    ProbeRecord.objects.bulk_create(
        ProbeRecord(organisation=org_a, label=f"a{i}") for i in range(20)
    )
    with django_assert_num_queries(3):  # the key, the page, one access-log insert for the page
        assert len(api_a.get(PROBE).json()["results"]) == 20


def test_organisation_in_the_body_is_ignored(api_a, org_a, org_b):
    response = api_a.post(
        PROBE,
        {"label": "new", "organisation": org_b.pk, "organisation_id": org_b.pk},
        format="json",
    )
    assert response.status_code == 201
    created = ProbeRecord.objects.get(pk=response.json()["id"])
    assert created.organisation == org_a
    assert not ProbeRecord.objects.filter(organisation=org_b).exists()


def test_an_update_cannot_move_a_row_to_another_organisation(api_a, org_b, record_a):
    api_a.patch(f"{PROBE}/{record_a.pk}", {"organisation": org_b.pk}, format="json")
    record_a.refresh_from_db()
    assert record_a.organisation_id != org_b.pk


@pytest.mark.obligation("TEN-3")
def test_suspended_organisation_reads_but_cannot_write(api_a, org_a, record_a):
    org_a.suspended_at = timezone.now()
    org_a.suspension_reason = "unpaid invoice 2026-014"
    org_a.save()
    assert api_a.get(PROBE).status_code == 200
    assert api_a.get(f"{PROBE}/{record_a.pk}").status_code == 200
    for response in (
        api_a.post(PROBE, {"label": "new"}, format="json"),
        api_a.patch(f"{PROBE}/{record_a.pk}", {"label": "x"}, format="json"),
        api_a.delete(f"{PROBE}/{record_a.pk}"),
    ):
        assert response.status_code == 403
        body = response.json()
        assert body["code"] == "organisation_suspended"
        assert body["type"].endswith("/organisation_suspended")
        assert "unpaid invoice 2026-014" in body["detail"]
        assert "You can still view everything" in body["detail"]
    assert ProbeRecord.objects.filter(organisation=org_a).count() == 1
    record_a.refresh_from_db()
    assert record_a.label == "A's record"
