"""The access response (DSR-6): everything the subject has a right to, in one ZIP, for them only."""

from __future__ import annotations

import html as htmllib
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carely.audit.access_log import access_log_record
from carely.audit.context import Actor, acting_as
from carely.audit.models import AccessAction, AccessLogEntry, AccessPurpose
from consent.models import ConsentEntry
from contacts.services import contact_tags_set, contact_update
from dsr.access import SubjectMissing, access_package_build
from dsr.downloads import token_hash
from dsr.models import ArtifactKind, DsrArtifact
from files.services import contact_file_add
from messaging.models import Message
from tests.consent.conftest import ana, bor, make_contact, record  # noqa: F401
from tests.dsr.factories import make_request

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media-not-public/"},
        },
    }


def message(contact, body, **fields):
    fields.setdefault("channel", "sms")
    fields.setdefault("kind", "transactional")
    fields.setdefault("purpose", "appointment_reminders")
    return Message.objects.create(
        organisation_id=contact.organisation_id,
        contact=contact,
        body=body,
        to_address=contact.phone or contact.email,
        dedupe_key=f"test:{contact.pk}:{body}",
        **fields,
    )


@pytest.fixture
def history(org_a, ana, staff_a):  # noqa: F811
    """Ana with one of everything the response must hold, written through the services."""
    with acting_as(Actor.user(staff_a.pk)):
        entry = record(ana, purpose="marketing", ip_address="198.51.100.7")
        message(ana, "Vaš termin je jutri ob 9:00 (ANA-MSG-7731).")
        stored = contact_file_add(
            contact=ana,
            upload=SimpleUploadedFile("izvid-ana.pdf", PDF, content_type="application/pdf"),
            kind="document",
            uploaded_by=staff_a,
        )
        access_log_record(
            organisation=org_a,
            subject_type="contact",
            subject_id=ana.pk,
            action=AccessAction.VIEW,
            what=["phone", "email"],
            purpose=AccessPurpose.CARE,
        )
        contact_update(contact=ana, data={"last_name": "Zupan"}, reason="typo in surname")
        contact_tags_set(contact=ana, names=["diabetes-check"])
    ana.refresh_from_db()
    return {"entry": entry, "file": stored}


@pytest.fixture
def strangers(org_a, org_b, bor):  # noqa: F811
    """A second contact of the same clinic and one of another clinic, with distinctive data."""
    cene = make_contact(org_a, first_name="Cene", email="cene@example.test", phone="+38641999888")
    record(cene, purpose="marketing", ip_address="203.0.113.99")
    message(cene, "CENE-ONLY-MESSAGE-4411")
    record(bor, purpose="marketing")
    message(bor, "BOR-ONLY-MESSAGE-5522")
    return cene


def unpack(artifact):
    with artifact.stored_file.open("rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    # Unescaped: the assertions look for the text a reader sees.
    html = htmllib.unescape(archive.read("access.html").decode())
    data = json.loads(archive.read("access.json"))
    return archive, html, data


def rows(data, label):
    return data["data"][label]["rows"]


@pytest.mark.obligation("DSR-6")
def test_the_response_holds_all_of_the_subjects_data_in_html_and_json(
    org_a,
    ana,  # noqa: F811
    history,
    strangers,
    dpo_a,
):
    request = make_request(org_a, ana, language="en")
    artifact, token = access_package_build(request, actor=Actor.user(dpo_a.pk))
    archive, html, data = unpack(artifact)

    # Contact fields.
    contact = rows(data, "contacts.Contact")[0]
    assert contact["email"] == "ana@example.test"
    assert contact["phone"] == "+38641123456"
    assert contact["last_name"] == "Zupan"
    for value in ("ana@example.test", "+38641123456", "Zupan"):
        assert value in html
    # A consent with the very wording text it was given to.
    wording = history["entry"].wording
    consent = next(r for r in rows(data, "consent.ConsentEntry") if r["id"] == history["entry"].pk)
    assert consent["wording_text"] == wording.text
    assert consent["wording_version"] == wording.version
    assert consent["purpose"] == "marketing"
    assert consent["status"] == "given"
    assert wording.text[:40] in html.replace("<br>", "\n")
    # A message's contents.
    assert (
        rows(data, "messaging.Message")[0]["body"] == "Vaš termin je jutri ob 9:00 (ANA-MSG-7731)."
    )
    assert "ANA-MSG-7731" in html
    # The stored file's bytes, under files/, referenced from its row.
    file_row = rows(data, "files.ContactFile")[0]
    assert (
        file_row["document"].startswith("files/") and file_row["original_name"] == "izvid-ana.pdf"
    )
    assert archive.read(file_row["document"]) == PDF
    assert data["files"][0]["path"] == file_row["document"]
    assert data["files"][0]["sha256"] == history["file"].sha256
    assert file_row["document"] in html
    # An access-log entry about her (the staff view above).
    logged = rows(data, "audit.AccessLogEntry")
    assert any(r["action"] == "view" and r["data_accessed"] == ["email", "phone"] for r in logged)
    assert "Who looked at or exported your data" in html
    # The rectification history, readable (before and after) and as stored.
    change = next(c for c in data["rectification_history"] if c["kind"] == "rectification")
    assert change["fields"] == [{"field": "last_name", "before": "", "after": "Zupan"}]
    assert change["reason"] == "typo in surname"
    assert "typo in surname" in html
    # Tags.
    assert [r["tag"] for r in rows(data, "contacts.ContactTag")] == ["diabetes-check"]
    assert "diabetes-check" in html

    # Purposes with legal bases, categories, recipients, retention: only where she has rows.
    purposes = {a["purpose"]: a for a in data["processing"]}
    assert purposes["marketing"]["legal_basis"].startswith("Consent")
    assert purposes["appointment_reminders"]["legal_basis"].startswith("Contract")
    assert "Campaigns about the clinic" in purposes["marketing"]["description"]
    assert "message content" in purposes["appointment_reminders"]["data_categories"]
    assert "Infobip" in purposes["appointment_reminders"]["recipients"]
    assert "until consent is withdrawn" in purposes["marketing"]["retention"]
    assert purposes["marketing"]["legal_basis_recorded"] is True
    # Every clinic starts with care administration recorded as a contract.
    care = purposes["care_administration"]
    assert care["legal_basis_recorded"] is True
    assert "add this purpose" not in html
    assert {"identity", "contact", "consent_evidence", "message_content", "file"} <= set(
        data["categories"]
    )
    assert any("infobip" in r.lower() for r in data["recipients"])
    assert any("until consent is withdrawn" in r for r in data["retention"])
    stores = {s["model"] for s in data["stores"]}
    assert "messaging.WhatsAppSession" not in stores  # she has no rows there
    assert "messaging.WhatsAppSession" not in data["data"]
    for needle in ("Legal basis", "Consent (GDPR Art. 6(1)(a))", "Infobip", "message_content"):
        assert needle in html, needle
    assert "until consent is withdrawn, then 90 days unused" in html

    # Every right, the supervisory authority, the source, no automated decisions.
    rights = {r["right"] for r in data["rights"]}
    assert rights >= {
        "rectification",
        "erasure",
        "restriction",
        "objection",
        "portability",
        "withdrawal_of_consent",
        "complaint",
    }
    for right in ("Rectification", "Erasure", "Restriction", "Objection", "portability"):
        assert right in html
    assert "Withdrawal of consent" in html
    authority = data["supervisory_authority"]
    assert authority["name"] == "Information Commissioner of the Republic of Slovenia"
    assert authority["name_sl"] == "Informacijski pooblaščenec Republike Slovenije"
    assert authority["address"] == "Dunajska cesta 22, 1000 Ljubljana"
    assert authority["email"] == "gp.ip@ip-rs.si"
    assert authority["phone"] == "+386 1 230 97 30"
    assert authority["web"] == "https://www.ip-rs.si"
    for value in (
        "Informacijski pooblaščenec Republike Slovenije",
        "Dunajska cesta 22, 1000 Ljubljana",
        "gp.ip@ip-rs.si",
        "+386 1 230 97 30",
        "https://www.ip-rs.si",
    ):
        assert value in html
    assert data["source"]["kind"] == "staff"
    assert data["source"]["text"] in html
    assert data["automated_decision_making"]["takes_place"] is False
    assert "No automated decision-making, including profiling, takes place" in html
    assert data["automated_decision_making"]["text"].startswith("No automated decision-making")
    # The controller.
    assert data["controller"]["name"] == "Clinic A"
    assert "Clinic A" in html

    # Nobody else's data: the other contact of the clinic, the other clinic's contact.
    whole = html + json.dumps(data, ensure_ascii=False)
    for foreign in (
        "CENE-ONLY-MESSAGE-4411",
        "cene@example.test",
        "+38641999888",
        "203.0.113.99",
        "BOR-ONLY-MESSAGE-5522",
        "bor@example.test",
        "Clinic B",
    ):
        assert foreign not in whole
    assert {r["id"] for r in rows(data, "consent.ConsentEntry")} == set(
        ConsentEntry._base_manager.filter(contact=ana).values_list("pk", flat=True)
    )
    assert archive.namelist().count(file_row["document"]) == 1
    assert [n for n in archive.namelist() if n.startswith("files/")] == [file_row["document"]]

    # Stored with size, digest and a link secret of which only the hash is kept.
    artifact.refresh_from_db()
    assert artifact.kind == ArtifactKind.ACCESS_ZIP
    assert artifact.contact_id == ana.pk and artifact.request_id == request.pk
    assert artifact.organisation_id == org_a.pk
    assert artifact.size == artifact.stored_file.size
    assert len(artifact.sha256) == 64
    assert artifact.token_hash == token_hash(token) and token not in artifact.token_hash
    assert artifact.expires_at is not None
    # Building it is itself a logged export of her data.
    assert AccessLogEntry.objects.filter(
        organisation=org_a,
        subject_id=str(ana.pk),
        action=AccessAction.EXPORT,
        purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
        actor_id=str(dpo_a.pk),
    ).exists()


@pytest.mark.obligation("DSR-6")
def test_a_slovenian_request_is_answered_in_slovenian(org_a, ana, history, dpo_a):  # noqa: F811
    request = make_request(org_a, ana, language="sl")
    artifact, _token = access_package_build(request, actor=Actor.user(dpo_a.pk))
    _archive, html, data = unpack(artifact)
    assert '<html lang="sl">' in html
    assert "Vaši osebni podatki" in html
    assert "Avtomatizirano odločanje, vključno z oblikovanjem profilov, se ne izvaja" in html
    assert "Informacijski pooblaščenec Republike Slovenije" in html
    assert "Preklic privolitve" in html and "Prenosljivost" in html
    assert "<th>priimek</th>" in html and "<th>last name</th>" not in html  # labels read as words
    assert data["language"] == "sl"
    assert data["supervisory_authority"]["name"] == "Informacijski pooblaščenec Republike Slovenije"
    # The HTML loads nothing from anywhere: no scripts, no external stylesheets or images.
    html = _archive.read("access.html").decode()
    for marker in ("<script", "<link", "src=", "@import", "url("):
        assert marker not in html


@pytest.mark.obligation("DSR-6")
def test_data_not_collected_from_the_subject_names_its_source(org_a, dpo_a):
    from contacts.services import contact_create

    imported = contact_create(
        organisation=org_a,
        data={"first_name": "Ida", "email": "ida@example.test"},
        source_kind="import",
    )
    # What an import records as the source: the file it came from.
    type(imported).objects.filter(pk=imported.pk).update(source="lista-2025.csv")
    imported.refresh_from_db()
    request = make_request(org_a, imported, language="en")
    artifact, _token = access_package_build(request, actor=Actor.user(dpo_a.pk))
    _archive, html, data = unpack(artifact)
    assert data["source"] == {
        "kind": "import",
        "kind_label": "CSV import",
        "detail": "lista-2025.csv",
        "collected_from_subject": False,
        "text": "These data were not collected from you directly: the clinic imported them "
        "from a list (CSV import) of its records.",
    }
    assert "not collected from you directly" in html and "lista-2025.csv" in html


@pytest.mark.obligation("DSR-6")
def test_a_request_without_a_confirmed_contact_is_refused(org_a, dpo_a):
    request = make_request(org_a, None)
    with pytest.raises(SubjectMissing, match="no confirmed contact"):
        access_package_build(request, actor=Actor.user(dpo_a.pk))
    assert not DsrArtifact.objects.exists()


@pytest.mark.obligation("DSR-6")
def test_query_count_does_not_grow_with_the_organisation(org_a, ana, history, dpo_a):  # noqa: F811
    actor = Actor.user(dpo_a.pk)
    request = make_request(org_a, ana, language="en")
    other = make_contact(org_a, first_name="Other", email="other@example.test")
    record(other)
    message(other, "other 0")
    access_package_build(request, actor=actor)  # the first run creates the default purposes

    with CaptureQueriesContext(connection) as small:
        access_package_build(request, actor=actor)

    for n in range(1, 200):
        contact = make_contact(org_a, first_name=f"P{n}", email=f"p{n}@example.test")
        record(contact)
    contacts = list(org_a_contacts(org_a))
    Message.objects.bulk_create(
        Message(
            organisation=org_a,
            contact=c,
            channel="sms",
            kind="transactional",
            purpose="appointment_reminders",
            body=f"message for {c.pk}",
            dedupe_key=f"bulk:{c.pk}",
        )
        for c in contacts
        if c.pk != ana.pk
    )
    assert Message.objects.filter(organisation=org_a).count() >= 201

    with CaptureQueriesContext(connection) as large:
        artifact, _token = access_package_build(request, actor=actor)

    assert len(large.captured_queries) == len(small.captured_queries), [
        q["sql"][:120] for q in large.captured_queries
    ]
    _archive, _html, data = unpack(artifact)
    assert len(rows(data, "messaging.Message")) == 1


def org_a_contacts(org):
    from contacts.models import Contact

    return Contact.objects.for_organisation(org).only("pk")


def _messages(org, contact, start, count, size=1000):
    Message.objects.bulk_create(
        (
            Message(
                organisation=org,
                contact=contact,
                channel="email",
                kind="transactional",
                purpose="appointment_reminders",
                body=f"{n:06d}" + "x" * (size - 6),
                dedupe_key=f"long:{n}",
            )
            for n in range(start, start + count)
        ),
        batch_size=500,
    )


def _peak_building(request, actor):
    import tracemalloc

    tracemalloc.start()
    try:
        artifact, _token = access_package_build(request, actor=actor)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return artifact, peak


@pytest.mark.obligation("DSR-6")
def test_a_long_message_history_is_streamed_not_held_in_memory(org_a, ana, dpo_a):  # noqa: F811
    actor = Actor.user(dpo_a.pk)
    request = make_request(org_a, ana, language="en")
    _messages(org_a, ana, 0, 1500)
    _artifact, small = _peak_building(request, actor)
    _messages(org_a, ana, 1500, 4500)  # four times the history: 6 MB of message text
    artifact, large = _peak_building(request, actor)

    _archive, html, data = unpack(artifact)
    assert len(rows(data, "messaging.Message")) == 6000
    assert "005999" in html
    # Rows are read in chunks and written out as they come: four times the messages must not
    # take four times the memory (held in memory, the large build would need 6 MB more).
    assert large < small * 1.5, (small, large)
