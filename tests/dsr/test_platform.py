"""The platform DPO's queue (DSR-2): requests about the platform's own data."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from carely.orgs.models import User
from dsr.models import State
from dsr.services import (
    DsrInvalid,
    dsr_code_check,
    dsr_code_send,
    dsr_decide,
    dsr_execute,
    dsr_receive,
)
from tests.factories import UserFactory


def _code(mailoutbox) -> str:
    body = mailoutbox[-1].body
    return next(w.strip(".") for w in body.split() if w.strip(".").isdigit() and len(w) >= 6)


@pytest.mark.obligation("DSR-2")
def test_a_user_asks_the_platform_for_their_data(db, mailoutbox):
    user = UserFactory(email="maja@clinic.test", full_name="Maja Horvat")
    request = dsr_receive(
        organisation=None,
        type="access",
        channel="form",
        subject={"email": "MAJA@clinic.test"},
        subject_kind="staff_user",
    )
    assert request.platform_queue
    assert request.subject_user == user
    dsr_code_send(request)
    assert mailoutbox[-1].to == ["maja@clinic.test"]  # the account's own address
    assert dsr_code_check(request, code=_code(mailoutbox))
    dsr_decide(request, decision="granted")
    dsr_execute(request)
    request.refresh_from_db()
    assert request.state == State.EXECUTED
    artifact = request.artifacts.get(kind="access_zip")
    with zipfile.ZipFile(io.BytesIO(artifact.stored_file.read())) as archive:
        exported = json.loads(archive.read("access.json"))
    assert "orgs.User" in exported["models"]
    assert "/dsr/download/" in mailoutbox[-1].body


@pytest.mark.obligation("DSR-2")
def test_a_visitor_request_is_carried_out_by_hand_with_a_note(db):
    request = dsr_receive(
        organisation=None,
        type="erasure",
        channel="email",
        subject={"email": "visitor@web.test"},
        subject_kind="visitor",
    )
    from django.core.files.uploadedfile import SimpleUploadedFile

    from dsr.services import dsr_attest

    dsr_attest(
        request,
        user=None,
        statement="Replied from the same address twice.",
        evidence=SimpleUploadedFile("mail.eml", b"From: visitor", "message/rfc822"),
    )
    dsr_decide(request, decision="granted")
    with pytest.raises(DsrInvalid) as caught:
        dsr_execute(request)
    assert "note" in caught.value.errors
    dsr_execute(request, params={"note": "Removed the newsletter sign-up and server log lines."})
    request.refresh_from_db()
    assert request.result == {"manual": True}
    assert request.steps.get(kind="executed").note.startswith("Removed the newsletter")
    assert User.objects.count() == 0
