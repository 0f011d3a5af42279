"""Idempotency-Key on POST: a repeat gets the first answer, never a second effect."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carely.api.idempotency import request_fingerprint
from carely.api.models import IdempotencyRecord
from carely.api.services import idempotency_record_purge_expired
from tests.tenancy_probe.models import ProbeRecord

pytestmark = pytest.mark.django_db

PROBE = "/api/v1/probe/records"


def _post(client, body, key="order-123"):
    return client.post(PROBE, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeat_returns_the_first_response_and_creates_once(api_a):
    first = _post(api_a, {"label": "one"})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    # Same body with other key order and spacing is the same request.
    again = api_a.post(
        PROBE,
        data='{ "label" : "one" }',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="order-123",
    )
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ProbeRecord.objects.count() == 1


def test_same_key_with_a_different_body_is_422(api_a):
    assert _post(api_a, {"label": "one"}).status_code == 201
    response = _post(api_a, {"label": "two"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_reused"
    assert ProbeRecord.objects.count() == 1


def test_a_repeat_while_the_first_is_in_flight_is_409(api_a, key_a, org_a):
    key, _ = key_a
    IdempotencyRecord.objects.create(
        organisation=org_a,
        api_key=key,
        key="order-123",
        request_hash=request_fingerprint(method="POST", path=PROBE, data={"label": "one"}),
    )
    response = _post(api_a, {"label": "one"})
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_request_in_progress"
    assert ProbeRecord.objects.count() == 0


def test_an_abandoned_in_flight_record_is_taken_over(api_a, key_a, org_a):
    IdempotencyRecord.objects.create(
        organisation=org_a,
        api_key=key_a[0],
        key="order-123",
        request_hash="x",
        created_at=timezone.now() - dt.timedelta(minutes=11),
    )
    assert _post(api_a, {"label": "one"}).status_code == 201
    assert ProbeRecord.objects.count() == 1


def test_a_failed_request_keeps_nothing_so_a_fixed_retry_works(api_a):
    assert _post(api_a, {"label": ""}).status_code == 400
    assert not IdempotencyRecord.objects.exists()
    assert _post(api_a, {"label": "fixed"}).status_code == 201


@pytest.mark.obligation("TEN-1")
def test_keys_are_separate_per_api_key_and_organisation(api_a, api_b, org_a, org_b):
    assert _post(api_a, {"label": "a"}).status_code == 201
    response = _post(api_b, {"label": "b"})
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert ProbeRecord.objects.filter(organisation=org_a).count() == 1
    assert ProbeRecord.objects.filter(organisation=org_b).count() == 1


def test_records_expire_after_24_hours(api_a):
    assert _post(api_a, {"label": "one"}).status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    response = _post(api_a, {"label": "one"})
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert ProbeRecord.objects.count() == 2
    IdempotencyRecord.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    assert idempotency_record_purge_expired() == 1
    assert not IdempotencyRecord.objects.exists()


def test_a_bad_key_header_is_400(api_a):
    response = _post(api_a, {"label": "one"}, key="x" * 300)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert ProbeRecord.objects.count() == 0


def test_without_the_header_each_post_creates(api_a):
    api_a.post(PROBE, {"label": "one"}, format="json")
    api_a.post(PROBE, {"label": "one"}, format="json")
    assert ProbeRecord.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


def test_the_purge_task_deletes_only_expired_records(api_a):
    from carely.api.tasks import idempotency_records_purge

    _post(api_a, {"label": "old"}, key="old")
    _post(api_a, {"label": "new"}, key="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - dt.timedelta(hours=24, seconds=1)
    )
    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_repeat_gets_409_then_the_first_answer(org_a, make_key):
    """Two real connections: the repeat arrives while the first request is inside its handler."""
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    from tests.api.conftest import bearer
    from tests.tenancy_probe.views import ProbeRecordViewSet

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL): SQLite serialises the two writers")
    _, plaintext = make_key(org_a)
    entered, release = threading.Event(), threading.Event()
    results = {}

    def hold():
        entered.set()
        release.wait(10)

    def first():
        try:
            results["first"] = _post(bearer(APIClient(), plaintext), {"label": "one"})
        finally:
            connection.close()

    ProbeRecordViewSet.on_create = staticmethod(hold)
    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert entered.wait(10)
        second = _post(bearer(APIClient(), plaintext), {"label": "one"})
        assert second.status_code == 409
        release.set()
        thread.join(10)
    finally:
        ProbeRecordViewSet.on_create = None
        release.set()
    assert results["first"].status_code == 201
    third = _post(bearer(APIClient(), plaintext), {"label": "one"})
    assert third.status_code == 201 and third["Idempotent-Replayed"] == "true"
    assert third.json() == results["first"].json()
    assert ProbeRecord.objects.count() == 1
