"""/healthz and /readyz answer without a session and say which peer failed."""

from __future__ import annotations

import pytest

from carely.celery import app as celery_app


@pytest.mark.django_db
def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_broker_and_storage(client):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["failed"] == []
    assert set(body["checks"]) == {"database", "broker", "storage"}


def _pool_reset() -> None:
    """Close the app's producer pool and drop it, so the next task send builds a new one for the
    broker URL now configured (a closed pool left in place fails every later send in this
    process with "Acquire on closed pool")."""
    celery_app.pool.force_close_all()
    celery_app._pool = None


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_unreachable(client):
    # A real connection attempt to a closed loopback port, not a mock.
    conf = celery_app.conf
    saved = (conf.broker_url, conf.broker_transport_options)
    conf.broker_url, conf.broker_transport_options = "redis://127.0.0.1:1/0", {}
    _pool_reset()
    try:
        response = client.get("/readyz")
    finally:
        conf.broker_url, conf.broker_transport_options = saved
        _pool_reset()
    body = response.json()
    assert response.status_code == 503
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"]["ok"] is True
    # The probe names the failing peer but never echoes configuration such as URLs.
    assert "127.0.0.1:1" not in response.content.decode()
