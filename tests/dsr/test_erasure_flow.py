"""An erasure request from intake to evidence pack (DSR-9, DSR-12, DSR-14): the subject is told
of the result after their data is gone, and the closed request keeps no value of theirs."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import Contact
from dsr.models import DataSubjectRequest
from messaging.services import message_enqueue


@pytest.mark.obligation("DSR-9")
@pytest.mark.obligation("DSR-14")
def test_erasure_request_end_to_end(dsr_api, org_a, ana, mailoutbox):
    ana.relationship_status = "active"
    ana.save()
    waiting = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        text="Ana, your appointment is tomorrow at 9:00.",
        dedupe_key="reminder-1",
    )
    created = dsr_api.post(
        "/api/v1/dsr/",
        {"type": "erasure", "subject": {"email": "ana@example.test", "name": "Ana Novak"}},
        format="json",
    ).json()
    url = f"/api/v1/dsr/{created['id']}"
    evidence = SimpleUploadedFile("id.txt", b"ID card checked", "text/plain")
    dsr_api.post(
        f"{url}/verify/",
        {
            "method": "attestation",
            "statement": "ID card checked at reception.",
            "evidence": evidence,
        },
        format="multipart",
    )
    dsr_api.post(f"{url}/decide/", {"decision": "granted"}, format="json")
    executed = dsr_api.post(f"{url}/execute/", {}, format="json")
    assert executed.status_code == 200, executed.content
    assert not Contact.objects.filter(pk=ana.pk).exists()
    result = executed.json()["result"]
    assert result["verification"]["passed"] is True
    # The waiting reminder was cancelled before the erasure; its contents went with the contact.
    from messaging.models import Message

    left = Message.objects.filter(pk=waiting.pk).first()
    assert left is None or (left.status == "cancelled" and left.body == "" and not left.to_address)
    # Told after the erasure, at the address captured before it.
    told = [m for m in mailoutbox if m.to == ["ana@example.test"]]
    assert told and "DSR-" in told[-1].subject
    closed = dsr_api.post(f"{url}/close/", {}, format="json")
    assert closed.json()["state"] == "closed"
    request = DataSubjectRequest.objects.get(pk=created["id"])
    assert request.contact_id is None
    assert request.subject_name == ""
    assert request.subject_email.startswith("kh1:")
    assert request.subject_details_erased_at is not None
    assert request.attachments.count() == 0  # the evidence file named the person
    pack = request.artifacts.get(kind="evidence_pack")
    with zipfile.ZipFile(io.BytesIO(pack.stored_file.read())) as archive:
        document = json.loads(archive.read("evidence.json"))
        raw = archive.read("evidence.json") + archive.read("evidence.html")
    assert document["result"]["verification"]["passed"] is True
    for secret in (b"ana@example.test", b"Ana", b"Novak", b"41123456", b"K-1"):
        assert secret not in raw
