"""The campaign path's shortcuts change nothing a message holds (bench/messaging_enqueue.py).

``messages_enqueue_bulk`` parses a template once per call, signs unsubscribe tokens with one
derived key, counts plain SMS parts arithmetically and, on PostgreSQL, writes rows and events by
``COPY``. Each shortcut is checked here against the one-message path or the general function it
stands in for; and the click-tracking hook (``track_links``) the campaigns use.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core import signing
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from consent.links import UnsubscribeLinks, public_url, unsubscribe_url
from consent.tokens import unsubscribe_token_make, unsubscribe_token_maker, unsubscribe_token_read
from contacts.models import Contact
from messaging.models import Message, MessageEvent
from messaging.segments import sms_encoding
from messaging.services import (
    MessageInvalid,
    MessageRefused,
    _copy_text,
    _messages_insert,
    _Row,
    _sms_parts_plain,
    _text_links_tracked,
    message_enqueue,
    messages_enqueue_bulk,
    template_save,
)
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db

_TOKEN_IN_URL = re.compile(r"/u/([^/\s>\"]+)/")


def _tokens_read(text: str) -> str:
    """The text with each unsubscribe token replaced by what it says (the signing second of two
    otherwise equal tokens may differ)."""
    return _TOKEN_IN_URL.sub(lambda m: f"/u/{unsubscribe_token_read(m.group(1))}/", text)


def _stored(message: Message) -> dict[str, object]:
    message.refresh_from_db()
    return {
        "subject": message.subject,
        "body": _tokens_read(message.body),
        "html_body": _tokens_read(message.html_body),
        "extras": _tokens_read(message.extras),
        "to_address": message.to_address,
        "legal_basis": message.legal_basis,
        "consent_entry_id": message.consent_entry_id,
        "parts_estimated": message.parts_estimated,
        "template_version": message.template_version,
        "respect_quiet_hours": message.respect_quiet_hours,
        "status": message.status,
        "campaign_id": message.campaign_id,
        "events": [(e.kind, e.source, e.detail["legal_basis"]) for e in message.events.all()],
    }


@pytest.fixture
def patients(org_a):
    """A mix a campaign meets: Slovenian and English, a name that forces UCS-2, one without
    consent, one without a phone, one without an e-mail."""
    people = [
        make_contact(
            org_a,
            first_name="Ana",
            last_name="Novak",
            email="ana@example.test",
            phone="+38641123456",
            preferred_language="sl",
            relationship_status="active",
        ),
        make_contact(
            org_a,
            first_name="Eve",
            last_name="Smith",
            email="eve@example.test",
            phone="+38641123457",
            preferred_language="en",
        ),
        make_contact(
            org_a,
            first_name="Živa",
            last_name="Zupančič",
            email="ziva@example.test",
            phone="+38641123458",
        ),
        make_contact(org_a, first_name="Bor", last_name="Kos", phone="+38641123459"),  # no consent
        make_contact(org_a, first_name="Cene", last_name="Ros", email="cene@ex.test"),  # no phone
        make_contact(org_a, first_name="Dana", last_name="Lah", phone="+38641123460"),  # no e-mail
    ]
    for person in people[:3] + people[4:]:
        record(person, channel="all", purpose="marketing")
    return people


def _templates(org):
    sms = template_save(
        organisation=org,
        name="offer",
        kind="marketing",
        channel="sms",
        language="sl",
        body="{{ first_name }}, {{ discount }} popusta: https://clinic.example.test/book",
        variables=["discount"],
    )
    email = template_save(
        organisation=org,
        name="offer",
        kind="marketing",
        channel="email",
        language="sl",
        subject="Novost za {{ first_name }}",
        body="Pozdravljeni {{ first_name }} {{ last_name }}, {{ discount }} popusta.",
        html_body="<p>{{ first_name }} &amp; {{ discount }}</p>",
        variables=["discount"],
    )
    return {"sms": sms, "email": email}


@pytest.mark.obligation("MSG-9", "MSG-8", "CON-7", "MSG-6")
@pytest.mark.parametrize("channel", ["sms", "email"])
def test_bulk_rows_are_what_message_enqueue_makes_contact_by_contact(
    org_a, patients, channel, django_capture_on_commit_callbacks
):
    template = _templates(org_a)[channel]
    # The first patient (eligible on both channels) lacks the variable: invalid there, as one
    # message would be. A refused contact is refused whatever its variables, in both paths.
    variables = {p.pk: {"discount": "20 %"} for p in patients[1:]}
    # The batch first: its one dispatch wake-up is then the first of the transaction.
    with django_capture_on_commit_callbacks() as callbacks:
        result = messages_enqueue_bulk(
            organisation=org_a,
            contacts=patients,
            channel=channel,
            kind="marketing",
            purpose="marketing",
            template=template,
            variables=variables,
            dedupe_key="campaign:bulk",
            campaign_id=7,
        )
    assert len(callbacks) == 1  # one dispatch wake-up for the batch
    single: dict[int, object] = {}
    for person in patients:
        try:
            message = message_enqueue(
                organisation=org_a,
                contact=person,
                channel=channel,
                kind="marketing",
                purpose="marketing",
                template=template,
                variables=variables.get(person.pk, {}),
                dedupe_key="campaign:single",
                campaign_id=7,
            )
        except MessageRefused as exc:
            single[person.pk] = ("refused", exc.reasons)
        except MessageInvalid as exc:
            single[person.pk] = ("invalid", exc.problems)
        else:
            single[person.pk] = _stored(message)

    bulk: dict[int, object] = {pk: ("refused", r) for pk, r in result.refused.items()}
    bulk |= {pk: ("invalid", p) for pk, p in result.invalid.items()}
    for message in Message.objects.filter(dedupe_key="campaign:bulk"):
        bulk[message.contact_id] = _stored(message)
    assert bulk == single
    assert result.created == sum(isinstance(v, dict) for v in single.values()) >= 2
    # Both kinds of outcome occurred, so the comparison covered them.
    assert {v[0] for v in single.values() if isinstance(v, tuple)} == {"refused", "invalid"}


@pytest.mark.obligation("MSG-9")
def test_a_second_bulk_call_with_the_same_key_creates_nothing(org_a, patients):
    template = _templates(org_a)["sms"]
    kwargs = {
        "organisation": org_a,
        "contacts": patients[:3],
        "channel": "sms",
        "kind": "marketing",
        "purpose": "marketing",
        "template": template,
        "variables": {p.pk: {"discount": "5 %"} for p in patients},
        "dedupe_key": "campaign:3",
        "campaign_id": 3,
    }
    first = messages_enqueue_bulk(**kwargs)
    again = messages_enqueue_bulk(**kwargs)
    assert (first.created, again.created, again.already_queued) == (3, 0, 3)
    assert Message.objects.filter(dedupe_key="campaign:3").count() == 3
    assert MessageEvent.objects.filter(message__dedupe_key="campaign:3").count() == 3


@pytest.mark.obligation("MSG-9", "MSG-6")
def test_rows_another_run_inserted_first_are_skipped_and_get_no_second_event(org_a, patients):
    """A concurrent run of the same batch (a restarted worker) inserted one row between this
    call's dedupe check and its insert: on PostgreSQL the COPY fails on the unique constraint
    and the batch goes in through the path that skips conflicts; either way that contact is
    not created twice and gets no second ``queued`` event."""
    ana, eve = patients[0], patients[1]
    message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="sms",
        kind="marketing",
        purpose="marketing",
        text="Popust.",
        dedupe_key="campaign:race",
    )
    now = timezone.now()
    common = {
        "organisation_id": org_a.pk,
        "channel": "sms",
        "kind": "marketing",
        "purpose": "marketing",
        "template_id": None,
        "template_version": None,
        "dedupe_key": "campaign:race",
        "due_at": now,
        "respect_quiet_hours": True,
        "campaign_id": None,
        "created_at": now,
        "created_by_id": None,
        "api_key_id": None,
    }
    rows = [_Row(p.pk, "", "Popust.", "", "", p.phone, "consent", None, 1) for p in (ana, eve)]
    with transaction.atomic():
        created = _messages_insert(org_a, rows, common, now, "enqueue")
    (eve_message,) = Message.objects.filter(dedupe_key="campaign:race", contact=eve)
    assert created == [(eve_message.pk, "consent")]
    assert eve_message.body == "Popust." and eve_message.to_address == eve.phone
    assert Message.objects.filter(dedupe_key="campaign:race").count() == 2
    events = MessageEvent.objects.filter(message__dedupe_key="campaign:race")
    assert sorted(e.message.contact_id for e in events) == sorted([ana.pk, eve.pk])


@pytest.mark.obligation("MSG-6", "CON-7")
def test_copied_rows_read_back_like_saved_ones(org_a, patients):
    """Every column of a row the fast path wrote reads back as the ORM would have stored it:
    encrypted values decrypt, empty ones stay empty, defaults are filled in, the event's
    detail is JSON with the basis and the due time."""
    template = _templates(org_a)["email"]
    messages_enqueue_bulk(
        organisation=org_a,
        contacts=patients[:1],
        channel="email",
        kind="marketing",
        purpose="marketing",
        template=template,
        variables={patients[0].pk: {"discount": "9 %"}},
        dedupe_key="campaign:9",
        campaign_id=9,
    )
    message = Message.objects.get(dedupe_key="campaign:9")
    assert message.subject == "Novost za Ana" and message.to_address == "ana@example.test"
    assert len(message.our_id) == 32 and message.refusal_reasons == []
    assert message.attempts == 0 and message.lease_owner == "" and message.handed_at is None
    assert message.status == "queued" and message.campaign_id == 9
    headers = json.loads(message.extras)["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (event,) = message.events.all()
    assert event.detail["legal_basis"] == "consent"
    assert event.detail["due_at"] == message.due_at.astimezone(dt.UTC).isoformat()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT subject, html_body <> '', extras FROM messaging_message WHERE id = %s",
                [message.pk],
            )
            subject, has_html, extras = cursor.fetchone()
        assert subject.startswith("e1$") and has_html and extras.startswith("e1$")


def test_copy_text_escapes_what_copy_would_misread():
    when = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    assert _copy_text("a\tb\\c\nd\re") == "a\\tb\\\\c\\nd\\re"
    assert [_copy_text(v) for v in (None, True, False, 7)] == ["\\N", "t", "f", "7"]
    assert _copy_text(when) == "2026-03-29T01:30:00+00:00"
    with pytest.raises(TypeError):
        _copy_text(1.5)


@pytest.mark.postgres
def test_copied_text_comes_back_as_written(org_a, patients):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    now = timezone.now()
    common = {
        "organisation_id": org_a.pk,
        "channel": "sms",
        "kind": "marketing",
        "purpose": "marketing",
        "template_id": None,
        "template_version": None,
        "dedupe_key": "campaign:tab\tand\\slash",
        "due_at": now,
        "respect_quiet_hours": True,
        "campaign_id": None,
        "created_at": now,
        "created_by_id": None,
        "api_key_id": None,
    }
    odd = "line\nnext\ttab \\N back\\slash"
    rows = [_Row(patients[0].pk, "", odd, "", "", "+38641123456", odd, None, 1)]
    with transaction.atomic():
        _messages_insert(org_a, rows, common, now, "enqueue")
    message = Message.objects.get(dedupe_key=common["dedupe_key"])
    assert (message.body, message.legal_basis, message.due_at) == (odd, odd, now)
    assert message.events.get().detail == {"legal_basis": odd, "due_at": now.isoformat()}


@pytest.mark.parametrize(
    "purpose",
    [
        "marketing",
        None,
        "a" * 60,  # long and repetitive: compressed, the "." form
        "novice-in-ponudbe",
    ],
)
def test_the_batch_token_is_the_one_signing_dumps_makes_in_the_same_second(
    org_a, patients, purpose
):
    contacts = [patients[0], Contact(organisation_id=10**12, pk=2**40)]
    for contact in contacts:
        for _ in range(3):  # the two may straddle a second; then the next try matches
            make = unsubscribe_token_maker()
            fast, slow = make(contact, purpose), unsubscribe_token_make(contact, purpose)
            if fast.split(":")[-2] == slow.split(":")[-2]:
                break
        assert fast == slow
        assert unsubscribe_token_read(fast) == (contact.organisation_id, contact.pk, purpose)
    assert make(patients[0], "a" * 60).startswith(".")
    with pytest.raises(signing.BadSignature):
        signing.loads(fast, salt="another.salt")


def test_batch_links_are_the_one_at_a_time_links(org_a, patients, settings):
    settings.CARELY_UNSUBSCRIBE_MAILTO_DOMAIN = "unsubscribe.example.test"
    links = UnsubscribeLinks("marketing")
    token = links.token(patients[0])
    assert links.url(token) == public_url(
        reverse("consent_public:unsubscribe", kwargs={"token": token})
    )
    assert _tokens_read(links.url(token)) == _tokens_read(unsubscribe_url(patients[0], "marketing"))
    headers = links.headers(token)
    assert headers["List-Unsubscribe"].startswith(f"<{links.url(token)}>, <mailto:unsubscribe@")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 160,
        "a" * 161,
        "a" * 306,
        "a" * 307,
        "č" * 70,
        "č" * 71,
        "Živa, " + "x" * 134,
        "€ costs two septets " * 9,  # extension characters: counted by sms_encoding
        "ok 🙂 " * 20,  # a surrogate pair: counted by sms_encoding
        "x" * 153 * 25,
        "x" * (153 * 25 + 1),
        "[]" + "y" * 158,
    ],
)
def test_the_plain_part_count_is_sms_encodings(text):
    plain = _sms_parts_plain(text)
    assert plain is None or plain == sms_encoding(text).parts


def _tracker(calls):
    def track(contact, url):
        calls.append(url)
        return f"https://t.example.test/c/{contact.pk}/{len(calls)}"

    return track


@pytest.mark.obligation("MSG-8")
def test_links_are_tracked_before_the_opt_out_line_and_the_part_count(org_a, patients):
    ana = patients[0]
    calls: list[str] = []
    long_url = "https://clinic.example.test/" + "x" * 150
    result = messages_enqueue_bulk(
        organisation=org_a,
        contacts=[ana],
        channel="sms",
        kind="marketing",
        purpose="marketing",
        text=f"Popust: {long_url}. Again: {long_url}",
        dedupe_key="campaign:track",
        track_links=_tracker(calls),
    )
    assert result.created == 1
    message = Message.objects.get(dedupe_key="campaign:track")
    # Each occurrence went through the callable; the sentence's full stop stayed outside.
    assert calls == [long_url, long_url]
    assert message.body.startswith(
        f"Popust: https://t.example.test/c/{ana.pk}/1. Again: https://t.example.test/c/{ana.pk}/2\n"
    )
    assert long_url not in message.body
    # The opt-out line is added after tracking and keeps the unsubscribe link itself.
    assert "Odjava: " in message.body and "/u/" in message.body.splitlines()[-1]
    # Parts counted on the tracked text: with the long links it would have cost more.
    untracked = re.sub(r"https://t\.example\.test/c/\d+/\d", long_url, message.body)
    assert message.parts_estimated == sms_encoding(message.body).parts
    assert message.parts_estimated < sms_encoding(untracked).parts


@pytest.mark.obligation("MSG-8")
def test_html_hrefs_are_tracked_and_the_unsubscribe_link_is_not(org_a, patients):
    ana = patients[0]
    template = template_save(
        organisation=org_a,
        name="news",
        kind="marketing",
        channel="email",
        language="sl",
        subject="Novice",
        body="Preberite: https://clinic.example.test/news?a=1&b=2 ali {{ unsubscribe_url }}",
        html_body='<a href="https://clinic.example.test/news?a=1&amp;b=2">novice</a> '
        '<a href="mailto:info@clinic.example.test">pisite</a> '
        '<a href="{{ unsubscribe_url }}">odjava</a>',
    )
    calls: list[str] = []
    messages_enqueue_bulk(
        organisation=org_a,
        contacts=[ana],
        channel="email",
        kind="marketing",
        purpose="marketing",
        template=template,
        dedupe_key="campaign:news",
        track_links=_tracker(calls),
    )
    message = Message.objects.get(dedupe_key="campaign:news")
    # The href is read unescaped (&amp; -> &); mailto and the unsubscribe link stay as they are.
    assert calls == ["https://clinic.example.test/news?a=1&b=2"] * 2
    assert f'href="https://t.example.test/c/{ana.pk}/2">novice' in message.html_body
    assert 'href="mailto:info@clinic.example.test"' in message.html_body
    assert message.html_body.count("/u/") == 1 and message.body.count("/u/") == 1


def test_a_link_ends_before_the_punctuation_after_it(patients):
    calls: list[str] = []
    text = "Glej (https://a.test/x?y=1). Ali https://b.test/, ali http://. Konec: HTTPS://C.TEST"
    out = _text_links_tracked(text, patients[0], "https://b.test/", _tracker(calls))
    assert calls == ["https://a.test/x?y=1", "HTTPS://C.TEST"]
    pk = patients[0].pk
    assert out == (
        f"Glej (https://t.example.test/c/{pk}/1). Ali https://b.test/, ali http://. Konec: "
        f"https://t.example.test/c/{pk}/2"
    )


@pytest.mark.postgres
def test_a_tracker_that_uses_the_database_and_deferred_contact_fields_work(org_a, patients):
    """Rendering runs before the COPY opens: the campaigns' tracker writes a row for a new link,
    and a contact loaded with only() loads its other fields on first use; neither may run while
    the connection is in COPY mode (on PostgreSQL it would wait forever)."""
    seen: list[int] = []

    def track(contact, url):
        seen.append(Message.objects.filter(organisation=org_a).count())
        return f"https://t.example.test/{contact.pk}"

    contacts = list(
        type(patients[0]).objects.filter(pk__in=[p.pk for p in patients[:3]]).only("id", "phone")
    )
    result = messages_enqueue_bulk(
        organisation=org_a,
        contacts=contacts,
        channel="sms",
        kind="marketing",
        purpose="marketing",
        text="Novo: https://clinic.example.test/a",
        dedupe_key="campaign:db-tracker",
        track_links=track,
    )
    assert result.created == 3 and seen == [0, 0, 0]
    assert Message.objects.filter(dedupe_key="campaign:db-tracker").count() == 3


def test_transactional_messages_are_not_tracked(org_a, patients):
    calls: list[str] = []
    messages_enqueue_bulk(
        organisation=org_a,
        contacts=[patients[0]],
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        text="Termin: https://clinic.example.test/t/1",
        dedupe_key="staff:tx",
        track_links=_tracker(calls),
    )
    assert calls == []
    assert Message.objects.get(dedupe_key="staff:tx").body.endswith("/t/1")
