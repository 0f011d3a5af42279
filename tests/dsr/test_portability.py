"""Portability (DSR-7): provided data only, where processing rests on consent or contract, as JSON
and CSV; pushed to another controller over HTTPS only, with the outcome recorded."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from werkzeug import Response

from carely.audit.context import Actor, acting_as
from carely.audit.models import AccessAction, AccessLogEntry, AuditEvent
from carely.privacy.models import LegalBasis, ProcessingPurpose
from carely.privacy.records import purposes_ensure_defaults
from contacts.services import contact_tags_set
from dsr.models import ArtifactKind, DsrStep, PortabilityPush, StepKind
from dsr.portability import PushUrlRefused, portability_package_build, portability_push
from files.services import contact_file_add
from tests.consent.conftest import ana, bor, make_contact, record  # noqa: F401
from tests.dsr.factories import make_request
from tests.dsr.test_access import PDF, local_storage, message  # noqa: F401


@pytest.fixture
def ana_history(org_a, ana, staff_a):  # noqa: F811
    with acting_as(Actor.user(staff_a.pk)):
        record(ana, purpose="marketing", ip_address="198.51.100.7", user_agent="Firefox/Ana")
        message(ana, "ANA-SENT-TEXT-3141")
        contact_tags_set(contact=ana, names=["diabetes-check"])
        contact_file_add(
            contact=ana,
            upload=SimpleUploadedFile("izvid-ana.pdf", PDF, content_type="application/pdf"),
            kind="document",
            uploaded_by=staff_a,
        )
    cene = make_contact(org_a, first_name="Cene", email="cene@example.test")
    record(cene, purpose="marketing")
    return ana


def unpack(artifact):
    with artifact.stored_file.open("rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    data = json.loads(archive.read("portability.json"))
    table = list(csv.reader(io.StringIO(archive.read("portability.csv").decode())))
    return archive, data, table


@pytest.mark.obligation("DSR-7")
def test_the_package_holds_what_the_subject_provided_and_nothing_else(
    org_a,
    ana_history,
    dpo_a,
):
    ana = ana_history  # noqa: F811
    request = make_request(org_a, ana, type="portability")
    artifact, token = portability_package_build(request, actor=Actor.user(dpo_a.pk))
    archive, data, table = unpack(artifact)

    assert artifact.kind == ArtifactKind.PORTABILITY_ZIP and token
    assert data["format"] == "carely-portability/1"
    contact = data["models"]["contacts.Contact"]
    assert len(contact) == 1
    assert contact[0]["email"] == "ana@example.test"
    assert contact[0]["phone"] == "+38641123456"
    assert contact[0]["first_name"] == "Ana"
    # Derived or recorded by the clinic, not provided: external id, blind indexes, source.
    for column in ("external_id", "external_id_bidx", "email_bidx", "phone_bidx", "source"):
        assert column not in contact[0]
    consents = data["models"]["consent.ConsentEntry"]
    assert {"channel", "status", "purpose_id", "recorded_at"} <= set(consents[0])
    assert "ip_address" not in consents[0] and "user_agent" not in consents[0]
    # Not provided at all: the texts the clinic sent, the tags it put on.
    assert "messaging.Message" not in data["models"]
    assert "contacts.ContactTag" not in data["models"]
    # Files serve care administration, a contract: the documents the subject handed in count.
    assert "files.ContactFile" in data["models"]

    whole = archive.read("portability.json").decode() + archive.read("portability.csv").decode()
    for absent in (
        "198.51.100.7",
        "Firefox/Ana",
        "K-1",
        "ANA-SENT-TEXT-3141",
        "diabetes-check",
        "cene@example.test",
    ):
        assert absent not in whole, absent

    # The CSV is the same data as one long table.
    assert table[0] == ["model", "row_id", "column", "value"]
    assert ["contacts.Contact", str(ana.pk), "email", "ana@example.test"] in table
    # A leading "+" would make a spreadsheet formula: the apostrophe keeps it text (safe_cell).
    assert ["contacts.Contact", str(ana.pk), "phone", "'+38641123456"] in table
    cells = {(r[0], r[1], r[2]) for r in table[1:]}
    for label, rows in data["models"].items():
        for row in rows:
            for column in row:
                if column != "id":
                    assert (label, str(row["id"]), column) in cells


@pytest.mark.obligation("DSR-7")
def test_which_records_count_follows_the_recorded_legal_basis(org_a, ana_history, dpo_a):
    ana = ana_history  # noqa: F811
    purposes_ensure_defaults(organisation=org_a)
    # Everything the record serves on legitimate interests: the contact record no longer counts.
    ProcessingPurpose.objects.filter(
        organisation=org_a,
        slug__in=["appointment_reminders", "marketing", "care_administration"],
    ).update(legal_basis=LegalBasis.LEGITIMATE_INTERESTS)
    request = make_request(org_a, ana, type="portability")
    artifact, _token = portability_package_build(request, actor=Actor.user(dpo_a.pk))
    _archive, data, _table = unpack(artifact)
    assert "contacts.Contact" not in data["models"]
    assert "contacts.Contact" in {item["model"] for item in data["left_out"]}
    assert "ana@example.test" not in json.dumps(data)

    # Care administration recorded as a contract: the record and the files now count, bytes
    # included.
    ProcessingPurpose.objects.filter(organisation=org_a, slug="care_administration").update(
        legal_basis=LegalBasis.CONTRACT
    )
    artifact, _token = portability_package_build(request, actor=Actor.user(dpo_a.pk))
    archive, data, _table = unpack(artifact)
    assert data["models"]["contacts.Contact"][0]["email"] == "ana@example.test"
    files = data["models"]["files.ContactFile"]
    assert files[0]["original_name"] == "izvid-ana.pdf"
    assert archive.read(files[0]["document"]) == PDF
    # Consent entries rest on consent whatever the other purposes say (surveys, reviews).
    assert "consent.ConsentEntry" in data["models"]


@pytest.fixture
def insecure_loopback(settings):
    settings.DSR_PUSH_INSECURE_HOSTS = ["localhost", "127.0.0.1"]


@pytest.mark.obligation("DSR-7")
def test_a_push_sends_the_portable_json_and_records_the_answer(
    org_a, ana_history, dpo_a, httpserver, insecure_loopback
):
    ana = ana_history  # noqa: F811
    received = []

    def handler(http_request):
        received.append(http_request.get_data())
        return Response(json.dumps({"received": True, "padding": "x" * 2000}), status=201)

    httpserver.expect_request("/inbox", method="POST").respond_with_handler(handler)
    request = make_request(org_a, ana, type="portability")
    push = portability_push(request, httpserver.url_for("/inbox"), actor=Actor.user(dpo_a.pk))

    assert len(received) == 1
    body = received[0]
    pushed = json.loads(body)
    assert pushed["format"] == "carely-portability/1"
    assert pushed["models"]["contacts.Contact"][0]["email"] == "ana@example.test"
    push.refresh_from_db()
    assert push.status_code == 201
    assert push.error == ""
    assert push.bytes_sent == len(body)
    assert push.sha256 == hashlib.sha256(body).hexdigest()
    assert push.response_excerpt.startswith('{"received": true')
    assert len(push.response_excerpt) == 500
    # What was pushed is what the subject can download: the request's portability ZIP.
    artifact = request.artifacts.get(kind=ArtifactKind.PORTABILITY_ZIP)
    _archive, data, _table = unpack(artifact)
    assert data == pushed

    step = DsrStep.objects.get(request=request, kind=StepKind.PUSHED)
    assert step.data == {
        "push_id": push.pk,
        "host": "localhost",
        "status": 201,
        "bytes": len(body),
        "ok": True,
    }
    assert "ana@example.test" not in json.dumps(step.data)
    assert AuditEvent.objects.filter(action="dsr.pushed", object_id=str(request.pk)).exists()
    assert AccessLogEntry.objects.filter(
        subject_id=str(ana.pk), action=AccessAction.EXPORT, what=[f"portability_push:{push.pk}"]
    ).exists()


@pytest.mark.obligation("DSR-7")
def test_a_refusing_endpoint_is_recorded_as_an_error(
    org_a, ana_history, dpo_a, httpserver, insecure_loopback
):
    httpserver.expect_request("/inbox", method="POST").respond_with_data(
        "no such subject here", status=422
    )
    request = make_request(org_a, ana_history, type="portability")
    push = portability_push(request, httpserver.url_for("/inbox"), actor=Actor.user(dpo_a.pk))
    assert push.status_code == 422
    assert push.error == "the endpoint answered HTTP 422"
    assert push.response_excerpt == "no such subject here"
    assert DsrStep.objects.get(request=request, kind=StepKind.PUSHED).data["ok"] is False


@pytest.mark.obligation("DSR-7")
def test_an_unreachable_endpoint_is_recorded_not_raised(
    org_a, ana_history, dpo_a, insecure_loopback
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = make_request(org_a, ana_history, type="portability")
    push = portability_push(request, f"http://127.0.0.1:{port}/inbox", actor=Actor.user(dpo_a.pk))
    assert push.status_code is None and push.bytes_sent == 0
    assert push.error.startswith("could not send to 127.0.0.1")
    step = DsrStep.objects.get(request=request, kind=StepKind.PUSHED)
    assert step.data["status"] is None and step.data["host"] == "ip-address"


@pytest.mark.obligation("DSR-7")
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://{host}/inbox", "must use https://"),
        ("ftp://{host}/inbox", "must use https://"),
        ("https:///inbox", "has no host"),
        ("https://user:secret@{host}/inbox", "must not hold a user name or password"),
    ],
)
def test_a_push_to_anything_but_https_is_refused_before_sending(
    org_a, ana_history, dpo_a, httpserver, settings, url, message
):
    settings.DSR_PUSH_INSECURE_HOSTS = []
    httpserver.expect_request("/inbox").respond_with_data("ok")
    host = f"localhost:{httpserver.port}"
    request = make_request(org_a, ana_history, type="portability")
    with pytest.raises(PushUrlRefused, match=message) as refused:
        portability_push(request, url.format(host=host), actor=Actor.user(dpo_a.pk))
    assert isinstance(refused.value, ValueError)
    assert httpserver.log == []
    assert not PortabilityPush.objects.exists()
    assert not DsrStep.objects.filter(kind=StepKind.PUSHED).exists()


@pytest.mark.obligation("DSR-7")
def test_http_is_refused_for_hosts_not_listed_even_when_some_are(
    org_a, ana_history, dpo_a, settings
):
    settings.DSR_PUSH_INSECURE_HOSTS = ["127.0.0.1"]
    request = make_request(org_a, ana_history, type="portability")
    with pytest.raises(PushUrlRefused, match=r"receiver\.example\.test"):
        portability_push(request, "http://receiver.example.test/inbox", actor=Actor.user(dpo_a.pk))
