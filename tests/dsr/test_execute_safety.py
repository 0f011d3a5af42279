"""Carrying out a request is all or nothing (nothing half done, nothing sent twice), and a push
to another controller is recorded even when it fails (DSR-7, DSR-14)."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from dsr import notices
from dsr.models import PortabilityPush, State
from dsr.services import DsrInvalid, dsr_decide, dsr_execute
from tests.dsr.factories import make_request


def _granted(org, contact, kind):
    request = make_request(org, contact, type=kind)
    dsr_decide(request, decision="granted")
    return request


@pytest.mark.obligation("DSR-14")
def test_a_failure_after_the_zip_was_written_leaves_no_file_and_no_state(org_a, ana, monkeypatch):
    request = _granted(org_a, ana, "access")

    def broken(*args, **kwargs):
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr("dsr.services.notice_send", broken)
    with pytest.raises(RuntimeError):
        dsr_execute(request)
    request.refresh_from_db()
    assert request.state == State.DECIDED
    assert request.artifacts.count() == 0
    folder = f"dsr/{org_a.pk}/{request.pk}"
    _dirs, files = default_storage.listdir(folder)
    assert files == []
    monkeypatch.setattr("dsr.services.notice_send", notices.notice_send)
    dsr_execute(request)  # and it can be carried out again, once
    assert request.artifacts.filter(kind="access_zip").count() == 1


@pytest.mark.obligation("DSR-7")
def test_push_is_refused_before_anything_is_done_for_a_bad_url(org_a, ana):
    request = _granted(org_a, ana, "portability")
    with pytest.raises(DsrInvalid) as caught:
        dsr_execute(request, params={"push_url": "http://elsewhere.example/import"})
    assert "push_url" in caught.value.errors
    request.refresh_from_db()
    assert request.state == State.DECIDED
    assert request.artifacts.count() == 0


@pytest.mark.obligation("DSR-7")
def test_push_after_the_commit_is_recorded_with_the_answer(org_a, ana, httpserver, settings):
    settings.DSR_PUSH_INSECURE_HOSTS = ["127.0.0.1", "localhost"]
    httpserver.expect_request("/import", method="POST").respond_with_json(
        {"received": True}, status=201
    )
    request = _granted(org_a, ana, "portability")
    dsr_execute(request, params={"push_url": httpserver.url_for("/import")})
    request.refresh_from_db()
    assert request.state == State.EXECUTED
    push = PortabilityPush.objects.get(request=request)
    assert push.status_code == 201
    assert request.result["push_id"] == push.pk
    assert request.result["push_status"] == 201
    assert request.steps.filter(kind="pushed").exists()
