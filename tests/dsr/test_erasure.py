"""Carrying out an erasure request (DSR-9): messages cancelled first, the suppression entry kept
(CON-6), every declared store erased, and a verification that finds nothing left, or stops the
erasure (changing nothing) when something of the subject would stay."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from carely.api.services import api_key_create
from carely.audit.access_log import access_log_record
from carely.audit.context import Actor
from consent.eligibility import Reason, eligibility_decide
from consent.models import ConsentEntry, Objection, SuppressionEntry
from consent.services import objection_record
from contacts.models import Contact, ContactChange
from contacts.services import contact_create, contact_update
from dsr.erasure import ErasureIncomplete, ErasureInvalid, erasure_execute
from dsr.models import ArtifactKind, DataSubjectRequest, DsrArtifact, DsrStep, State, StepKind
from dsr.steps import dsr_step_add
from files.models import ContactFile
from files.services import contact_file_add
from messaging.models import Message, MessageEvent, Status
from messaging.receipts import UndeliverableAddress
from messaging.services import message_enqueue, template_save
from tests.consent.conftest import make_contact, record
from tests.dsr.factories import make_request

pytestmark = pytest.mark.django_db

# Distinctive values, so a search of raw bytes cannot hit them by chance.
FIRST = "Zdenka"
LAST = "Brezovnikova"
EMAIL = "Zdenka.Brezovnikova@Example.test"
PHONE = "+38641777888"
OLD_PHONE = "+38640999123"
EXTERNAL_ID = "KZ-99731"
ACTOR = Actor.system("dsr_erasure_test")
FAKE = "messaging.providers.fake.FakeProvider"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Stored files go to this test's own folder (never var/media)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.MESSAGING_PROVIDERS = {"sms": FAKE, "email": FAKE, "whatsapp": FAKE}
    settings.CARELY_PUBLIC_BASE_URL = "https://pep.example.test"
    return tmp_path / "media"


@dataclass
class History:
    contact: Contact
    request: DataSubjectRequest
    queued: list[Message]
    sent: list[Message]
    files: list[str]  # stored names
    api_key_id: int


def _templates(org):
    reminder = template_save(
        organisation=org,
        name="reminder",
        kind="transactional",
        channel="sms",
        language="sl",
        body="Pozdravljeni {{ first_name }} {{ last_name }}, termin {{ when }}.",
        variables=["when"],
    )
    offer = template_save(
        organisation=org,
        name="offer",
        kind="marketing",
        channel="email",
        language="sl",
        subject="Novost za {{ first_name }}",
        body="Pozdravljeni {{ first_name }} {{ last_name }}, ta mesec popust.",
    )
    return reminder, offer


def subject_with_history(org, *, objected: bool = True) -> History:
    """A patient with everything a clinic accumulates: consents, messages queued and sent with
    their name in the text, a file, an earlier access ZIP, access-log entries from staff and an
    API key, a change history (an old phone number), and an erasure request with their details."""
    contact = make_contact(
        org,
        first_name=FIRST,
        last_name=LAST,
        email=EMAIL,
        phone=OLD_PHONE,
        external_id=EXTERNAL_ID,
        relationship_status="active",
        address="Ulica Brezovnikove 7, Kranj",
    )
    contact_update(contact=contact, data={"phone": PHONE}, reason="the patient moved")
    contact.refresh_from_db()
    record(contact, channel="all", purpose="marketing")
    reminder, offer = _templates(org)
    later = timezone.now() + dt.timedelta(days=3)
    queued = [
        message_enqueue(
            organisation=org,
            contact=contact,
            channel="sms",
            kind="transactional",
            purpose="appointment_reminders",
            template=reminder,
            variables={"when": "petek ob 9.00"},
            send_at=later,
            dedupe_key=f"reminder-{n}",
        )
        for n in range(2)
    ]
    sent_sms = message_enqueue(
        organisation=org,
        contact=contact,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        template=reminder,
        variables={"when": "včeraj"},
        dedupe_key="reminder-sent",
    )
    sent_email = message_enqueue(
        organisation=org,
        contact=contact,
        channel="email",
        kind="marketing",
        purpose="marketing",
        template=offer,
        dedupe_key="offer-sent",
    )
    # What dispatch records once the providers took them (their ids are all they know us by).
    Message.objects.filter(pk=sent_sms.pk).update(
        status=Status.SENT, provider="infobip", provider_message_id="ib-7001"
    )
    Message.objects.filter(pk=sent_email.pk).update(
        status=Status.SENT, provider="ses", provider_message_id="ses-0100"
    )
    if objected:
        objection_record(contact=contact, kind="direct_marketing", source="staff")
    stored = contact_file_add(
        contact=contact,
        upload=ContentFile(f"%PDF-1.7 izvid {FIRST} {LAST}".encode(), name="izvid.pdf"),
        kind="document",
        uploaded_by=None,
    )
    earlier = make_request(org, contact, type="access", state=State.CLOSED)
    artifact = DsrArtifact(
        organisation=org, request=earlier, contact=contact, kind=ArtifactKind.ACCESS_ZIP
    )
    artifact.stored_file.save(
        "access.zip", ContentFile(f"{FIRST} {LAST} {EMAIL} {PHONE}".encode()), save=True
    )
    key, _ = api_key_create(organisation=org, name="Practice system", scopes=["contacts:read"])
    access_log_record(
        organisation=org,
        subject_type="contact",
        subject_id=contact.pk,
        what=["first_name", "email"],
        actor=Actor.api_key(key.pk),
    )
    access_log_record(
        organisation=org, subject_type="contact", subject_id=contact.pk, what=["phone"]
    )
    request = make_request(
        org,
        contact,
        type="erasure",
        state=State.DECIDED,
        subject_external_id=EXTERNAL_ID,
        details=f"Prosim, izbrišite vse podatke: {FIRST} {LAST}, {EMAIL}.",
    )
    dsr_step_add(request, StepKind.NOTE, actor=ACTOR, note=f"Called {FIRST} {LAST} back.")
    return History(
        contact=contact,
        request=request,
        queued=queued,
        sent=[sent_sms, sent_email],
        files=[stored.stored_file.name, artifact.stored_file.name],
        api_key_id=key.pk,
    )


def _execute(request, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return erasure_execute(request, actor=ACTOR)


@pytest.mark.obligation("DSR-9")
def test_erasure_verifies_zero_left_in_every_category(
    org_a, media, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a)
    contact_id = history.contact.pk

    result = _execute(history.request, django_capture_on_commit_callbacks)

    verification = result["verification"]
    assert verification["passed"] is True and verification["storage_checked"] is True
    assert set(verification["left_by_category"].values()) == {0}
    assert verification["left_by_model"] == {}
    assert verification["files"] == 2 and verification["files_left"] == 0
    for name in history.files:
        assert not (media / name).exists()
    # The audit trail and the access log stay, restricted, each with its legal reason.
    kept = verification["kept_restricted"]
    assert kept["audit.AccessLogEntry"]["rows"] == 2
    assert (
        "GDPR Art. 5(2)"
        in kept["audit.AccessLogEntry"]["legal_reasons"]["audit.AccessLogEntry.subject_id"]
    )
    # The request's own blind indexes stay (a repeated request is recognised) with the reason.
    assert (
        "dsr.DataSubjectRequest.subject_email_bidx"
        in (kept["dsr.DataSubjectRequest"]["legal_reasons"])
    )
    assert not Contact.objects.filter(pk=contact_id).exists()
    assert not ContactChange.objects.filter(contact_id=contact_id).exists()
    assert not ConsentEntry.objects.filter(contact_id=contact_id).exists()
    assert not ContactFile.objects.filter(contact_id=contact_id).exists()
    assert not DsrArtifact.objects.filter(request__organisation=org_a).exists()
    assert result["erased"]["by_model"]["contacts.Contact"] == {"deleted": 1}
    assert result["erased"]["files_removed"] == 2
    # Both verification stages are recorded on the request, with counts only.
    steps = list(history.request.steps.filter(kind=StepKind.VERIFICATION_RESULT))
    assert [s.data["stage"] for s in steps] == ["database", "storage"]
    assert steps[0].data["passed"] is True and steps[1].data["files_left"] == 0
    assert all(FIRST not in str(s.data) and "@" not in str(s.data) for s in steps)
    # The request keeps only keyed hashes of what identified the subject.
    history.request.refresh_from_db()
    assert history.request.contact_id is None
    assert history.request.subject_name == "" and history.request.details == ""
    assert history.request.subject_email.startswith("kh1:")
    assert history.request.subject_external_id.startswith("kh1:")
    note = DsrStep.objects.get(request=history.request, kind=StepKind.NOTE)
    assert note.note == ""


@pytest.mark.obligation("DSR-9")
def test_queued_messages_are_cancelled_and_sent_ones_emptied(
    org_a, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a)

    result = _execute(history.request, django_capture_on_commit_callbacks)

    assert result["messages_cancelled"] == 2
    for message in history.queued:
        message.refresh_from_db()
        assert message.status == Status.CANCELLED
        assert message.contact_id is None and message.body == "" and message.to_address == ""
        event = MessageEvent.objects.get(message=message, kind=Status.CANCELLED)
        assert event.detail == {"reason": "erased"}
    for message in history.sent:
        message.refresh_from_db()
        assert message.status == Status.SENT  # what the provider had cannot be called back
        assert message.contact_id is None and message.body == "" and message.subject == ""


@pytest.mark.obligation("DSR-9")
@pytest.mark.obligation("CON-6")
def test_only_the_suppression_entry_remains_and_blocks_a_reimport(
    org_a, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a, objected=True)
    entries_before = SuppressionEntry.objects.filter(organisation=org_a).count()

    result = _execute(history.request, django_capture_on_commit_callbacks)

    assert result["suppression"] == {"kept": True, "entries": 3}  # e-mail, phone, external id
    assert SuppressionEntry.objects.filter(organisation=org_a).count() == entries_before == 3
    assert not Objection.objects.filter(organisation=org_a).exists()
    again = contact_create(
        organisation=org_a,
        data={"first_name": "Z", "email": EMAIL.lower(), "phone": "041 777 888"},
        source_kind="import",
    )
    record(again, channel="all", purpose="marketing")
    for channel in ("email", "sms"):
        decision = eligibility_decide(
            organisation=org_a,
            contact_ids=[again.pk],
            kind="marketing",
            channel=channel,
            purpose="marketing",
        )[again.pk]
        assert not decision.allowed and Reason.SUPPRESSED in decision.reasons


@pytest.mark.obligation("DSR-9")
def test_a_subject_who_never_objected_leaves_no_suppression_entry(
    org_a, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a, objected=False)

    result = _execute(history.request, django_capture_on_commit_callbacks)

    assert result["suppression"] == {"kept": False, "entries": 0}
    assert not SuppressionEntry.objects.filter(organisation=org_a).exists()
    assert result["verification"]["passed"] is True


@pytest.mark.obligation("DSR-9")
@pytest.mark.obligation("CON-6")
def test_a_subject_on_the_suppression_list_keeps_an_entry_for_each_address(
    org_a, django_capture_on_commit_callbacks
):
    from consent.services import suppression_add

    history = subject_with_history(org_a, objected=False)
    suppression_add(organisation=org_a, phone=PHONE)  # listed by phone only, no objection

    result = _execute(history.request, django_capture_on_commit_callbacks)

    assert result["suppression"] == {"kept": True, "entries": 3}
    kinds = set(SuppressionEntry.objects.filter(organisation=org_a).values_list("kind", flat=True))
    assert kinds == {"email", "phone", "external_id"}
    assert result["verification"]["passed"] is True


@pytest.mark.obligation("DSR-9")
def test_a_subject_without_any_address_who_objected_is_erased(
    org_a, django_capture_on_commit_callbacks
):
    contact = make_contact(org_a, first_name="Ivo", last_name="Brez", email="ivo@example.test")
    objection_record(contact=contact, kind="direct_marketing", source="staff")
    Contact.objects.filter(pk=contact.pk).update(email="", email_bidx=None)
    SuppressionEntry.objects.filter(organisation=org_a).delete()
    request = make_request(org_a, contact, type="erasure", state=State.DECIDED)

    result = _execute(request, django_capture_on_commit_callbacks)

    assert result["suppression"] == {"kept": True, "entries": 0}
    assert result["verification"]["passed"] is True
    assert not Contact.objects.filter(pk=contact.pk).exists()


@pytest.mark.obligation("DSR-9")
def test_a_bounce_record_of_the_address_goes_with_the_subject(
    org_a, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a, objected=False)
    UndeliverableAddress.objects.create(
        organisation=org_a, kind="email", digest=history.contact.email_bidx, reason="ses_bounce"
    )

    result = _execute(history.request, django_capture_on_commit_callbacks)

    assert result["bounces_removed"] == 1
    assert not UndeliverableAddress.objects.filter(organisation=org_a).exists()
    assert result["verification"]["passed"] is True


@pytest.mark.obligation("DSR-9")
def test_a_duplicate_contact_with_the_same_address_fails_verification_and_nothing_changes(
    org_a, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a)
    # A second record of the same person that the request was not confirmed for: the registry
    # cannot reach it through the contact id, only the blind-index search finds it.
    make_contact(org_a, first_name="Z.", email=EMAIL.upper())
    contacts_before = Contact.objects.filter(organisation=org_a).count()
    messages_before = sorted(Message.objects.values_list("pk", "status"))

    with pytest.raises(ErasureIncomplete) as caught:
        _execute(history.request, django_capture_on_commit_callbacks)

    verification = caught.value.verification
    assert verification["passed"] is False
    assert verification["left_by_model"] == {"contacts.Contact": 1}
    assert verification["left_by_category"]["contact"] == 1
    assert "contacts.Contact" in str(caught.value)
    # Rolled back: the subject, their messages and files are all still there.
    assert Contact.objects.filter(organisation=org_a).count() == contacts_before
    assert Contact.objects.filter(pk=history.contact.pk).exists()
    assert sorted(Message.objects.values_list("pk", "status")) == messages_before
    assert not history.request.steps.filter(kind=StepKind.VERIFICATION_RESULT).exists()


@pytest.mark.obligation("DSR-9")
def test_a_request_row_the_registry_cannot_reach_fails_verification(
    org_a, django_capture_on_commit_callbacks
):
    history = subject_with_history(org_a)
    # An earlier request by the same address that was never linked to the contact still holds
    # the address in clear (encrypted); its blind index gives it away.
    make_request(org_a, None, type="access", state=State.CLOSED, subject_email=EMAIL)

    with pytest.raises(ErasureIncomplete) as caught:
        _execute(history.request, django_capture_on_commit_callbacks)

    assert caught.value.verification["left_by_model"] == {"dsr.DataSubjectRequest": 1}
    assert Contact.objects.filter(pk=history.contact.pk).exists()


@pytest.mark.obligation("DSR-9")
def test_a_request_without_a_confirmed_contact_is_refused(org_a):
    contact = make_contact(org_a, first_name="Eva", email="eva@example.test")
    # Several candidates, none confirmed yet: the request names no contact.
    request = make_request(org_a, None, type="erasure", subject_email="eva@example.test")
    with pytest.raises(ErasureInvalid, match="no confirmed contact"):
        erasure_execute(request, actor=ACTOR)
    assert Contact.objects.filter(pk=contact.pk).exists()


@pytest.mark.obligation("DSR-9")
def test_another_organisations_data_is_untouched(org_a, org_b, django_capture_on_commit_callbacks):
    history = subject_with_history(org_a)
    twin = make_contact(org_b, first_name=FIRST, email=EMAIL, phone=PHONE)

    result = _execute(history.request, django_capture_on_commit_callbacks)

    assert result["verification"]["passed"] is True
    twin.refresh_from_db()
    assert twin.email == EMAIL.lower()


@pytest.mark.obligation("DSR-9")
def test_query_count_does_not_grow_with_the_organisation(org_a, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def run() -> int:
        history = subject_with_history(org_a, objected=False)
        with CaptureQueriesContext(connection) as queries:
            _execute(history.request, django_capture_on_commit_callbacks)
        return len(queries)

    small = run()
    for n in range(30):
        other = make_contact(org_a, first_name=f"Other{n}", phone=f"+3864155{n:04d}")
        record(other, channel="all", purpose="marketing")
    assert run() == small


class StorageThatKeeps(FileSystemStorage):
    """A storage whose deletes silently do nothing (a misconfigured bucket policy, say)."""

    def delete(self, name: str) -> None:
        return None


@pytest.mark.obligation("DSR-9")
@pytest.mark.django_db(transaction=True)
def test_a_file_left_in_storage_fails_verification_and_is_recorded(org_a, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.dsr.test_erasure.StorageThatKeeps",
            "OPTIONS": {"location": str(tmp_path / "kept")},
        },
    }
    history = subject_with_history(org_a, objected=False)

    with pytest.raises(ErasureIncomplete, match="could not be removed from storage") as caught:
        erasure_execute(history.request, actor=ACTOR)

    assert caught.value.verification["files_left"] == 2
    assert caught.value.verification["passed"] is False
    # The database part stands (it committed before the files could be checked) ...
    assert not Contact.objects.filter(pk=history.contact.pk).exists()
    # ... and both stages are on the request: the database passed, the storage did not.
    steps = history.request.steps.filter(kind=StepKind.VERIFICATION_RESULT).order_by("pk")
    assert [(s.data["stage"], s.data["passed"]) for s in steps] == [
        ("database", True),
        ("storage", False),
    ]
    assert steps[1].data["files_left"] == 2


@pytest.mark.obligation("DSR-9")
def test_an_import_file_that_names_the_subject_goes_with_them(
    org_a, django_capture_on_commit_callbacks
):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from contacts.models import ImportJob, ImportState

    history = subject_with_history(org_a, objected=False)
    contact = history.contact
    phone_as_typed = "0" + contact.phone[4:6] + " " + contact.phone[6:9] + " " + contact.phone[9:]
    naming = ImportJob.objects.create(organisation=org_a, state=ImportState.COMPLETED)
    naming.rejected_file.save(
        "rejected.csv", ContentFile(f"first_name,phone\n{contact.first_name},{phone_as_typed}\n")
    )
    other = ImportJob.objects.create(organisation=org_a, state=ImportState.COMPLETED)
    other.rejected_file.save("rejected.csv", ContentFile("first_name,email\nBor,bor@x.test\n"))
    naming_name, other_name = naming.rejected_file.name, other.rejected_file.name

    result = _execute(history.request, django_capture_on_commit_callbacks)

    assert result["import_files_removed"] == 1
    naming.refresh_from_db()
    assert naming.rejected_file.name == "" and naming.files_purged_at is not None
    assert not default_storage.exists(naming_name)
    assert default_storage.exists(other_name)  # another patient's rows stay for the clinic
