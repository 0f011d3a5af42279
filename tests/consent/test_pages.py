"""The patient's own pages (CON-2): unsubscribe link with RFC 8058 one-click, preference page,
public consent form with double opt-in. Through the Django test client, as a patient would."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.core import mail, signing
from django.test import Client
from django.utils import timezone

from consent import sending
from consent.forms import form_started_stamp
from consent.links import list_unsubscribe_headers, preferences_url, unsubscribe_url
from consent.models import ConsentEntry, PendingSignup, Wording
from consent.selectors import consent_states
from consent.services import wording_publish
from consent.signups import MAX_ATTEMPTS, pending_signups_purge
from consent.tokens import SALT, unsubscribe_token_make
from contacts.models import Contact
from tests.consent.conftest import make_contact, record

pytestmark = pytest.mark.django_db


def english_client(**defaults) -> Client:
    """A browser asking for English; without a language the pages use the clinic's (sl)."""
    defaults.setdefault("HTTP_ACCEPT_LANGUAGE", "en")
    return Client(**defaults)


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _state(contact, purpose="marketing"):
    states = consent_states(organisation=contact.organisation, contact_ids=[contact.pk])
    per = states.get(contact.pk, {})
    return {ch: per[(purpose, ch)].status for (slug, ch) in per if slug == purpose}


def _entries(contact, **filters):
    return ConsentEntry.objects.for_organisation(contact.organisation).filter(
        contact=contact, **filters
    )


# --- links and headers --------------------------------------------------------------------------


@pytest.mark.obligation("CON-2")
def test_list_unsubscribe_headers_use_the_public_base_url(ana, settings):
    settings.CARELY_PUBLIC_BASE_URL = "https://pep.example.eu"
    headers = list_unsubscribe_headers(ana, "marketing")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    value = headers["List-Unsubscribe"]
    assert value.startswith("<https://pep.example.eu/u/") and value.endswith("/>")
    assert english_client().get(_path(value[1:-1])).status_code == 200
    assert unsubscribe_url(ana, "marketing").startswith("https://pep.example.eu/u/")
    assert preferences_url(ana).endswith("/preferences/")


# --- unsubscribe link ---------------------------------------------------------------------------


@pytest.mark.obligation("CON-2")
def test_get_shows_a_calm_page_in_the_clinics_name_and_withdraws_nothing(ana):
    record(ana)
    response = english_client().get(_path(unsubscribe_url(ana, "marketing")))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Stop marketing messages from Clinic A?" in body
    assert "Yes, unsubscribe" in body
    assert "The clinic may still contact you about your own appointments and treatment." in body
    assert _state(ana) == {"sms": "given", "email": "given", "whatsapp": "given"}
    # HEAD (link scanners) changes nothing either.
    english_client().head(_path(unsubscribe_url(ana, "marketing")))
    assert not _entries(ana, status="withdrawn").exists()


@pytest.mark.obligation("CON-2")
def test_post_withdraws_every_channel_with_ip_and_user_agent(ana):
    record(ana)
    client = english_client(
        enforce_csrf_checks=True, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="198.51.100.7"
    )
    response = client.post(_path(unsubscribe_url(ana, "marketing")))
    assert response.status_code == 200
    body = response.content.decode()
    assert "You are unsubscribed" in body
    assert "/preferences/" in body
    assert _state(ana) == {"sms": "withdrawn", "email": "withdrawn", "whatsapp": "withdrawn"}
    entry = _entries(ana, status="withdrawn").get()
    assert (entry.source, entry.channel) == ("unsubscribe_link", "all")
    assert (entry.ip_address, entry.user_agent) == ("198.51.100.7", "Firefox/140")
    assert entry.recorded_by_id is None


@pytest.mark.obligation("CON-2")
def test_second_post_is_fine_and_says_so_without_a_second_entry(ana):
    record(ana)
    client = english_client()
    client.post(_path(unsubscribe_url(ana, "marketing")))
    response = client.post(_path(unsubscribe_url(ana, "marketing")))
    assert response.status_code == 200
    assert "You are already unsubscribed" in response.content.decode()
    assert _entries(ana, status="withdrawn").count() == 1


@pytest.mark.obligation("CON-2")
def test_rfc8058_one_click_post_without_cookie_or_csrf_token(ana):
    record(ana)
    record(ana, purpose="surveys")
    client = english_client(enforce_csrf_checks=True)
    response = client.post(
        _path(unsubscribe_url(ana, "marketing")),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200  # never a redirect (RFC 8058)
    assert response["Content-Type"].startswith("text/plain")
    assert not response.cookies
    assert _state(ana) == {"sms": "withdrawn", "email": "withdrawn", "whatsapp": "withdrawn"}
    assert _state(ana, "surveys")["email"] == "given"  # only the token's purpose
    # Providers retry; a repeat answers 200 and writes nothing.
    again = client.post(
        _path(unsubscribe_url(ana, "marketing")),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert again.status_code == 200
    assert _entries(ana, status="withdrawn").count() == 1


@pytest.mark.obligation("CON-2")
def test_one_click_as_multipart_form_data_also_works(ana):
    record(ana)
    response = english_client(enforce_csrf_checks=True).post(
        _path(unsubscribe_url(ana, "marketing")), {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert _state(ana)["sms"] == "withdrawn"


@pytest.mark.obligation("CON-2")
def test_a_token_without_purpose_withdraws_every_purpose_with_consent(ana):
    record(ana)
    record(ana, purpose="surveys", channel="email")
    english_client().post(_path(unsubscribe_url(ana)))
    assert set(_state(ana).values()) == {"withdrawn"}
    assert _state(ana, "surveys") == {
        "sms": "withdrawn",
        "email": "withdrawn",
        "whatsapp": "withdrawn",
    }
    # Purposes never given get no entry: there was nothing to stop.
    assert not _entries(ana, purpose__slug="reminders").exists()


@pytest.mark.obligation("CON-2", "TEN-1")
@pytest.mark.parametrize("token", ["nonsense", "x" * 40, ".eJyrVkrOz0vOT0lVslKqBgAsEgUk:bad"])
def test_a_bad_or_forged_token_gets_a_clear_404(ana, token):
    record(ana)
    for method in ("get", "post"):
        response = getattr(english_client(), method)(f"/u/{token}/")
        assert response.status_code == 404
        assert "This link does not work" in response.content.decode()
    assert not _entries(ana, status="withdrawn").exists()


@pytest.mark.obligation("CON-2", "TEN-1")
def test_a_token_of_one_organisation_cannot_touch_anothers_contact(ana, bor):
    record(ana)
    record(bor)
    # A validly signed token naming organisation A and organisation B's contact id (only a bug
    # could make one): the contact is looked up in A, so it is not found.
    crossed = signing.dumps({"o": ana.organisation_id, "c": bor.pk}, salt=SALT, compress=True)
    for path in (f"/u/{crossed}/", f"/u/{crossed}/preferences/"):
        assert english_client().post(path, {"List-Unsubscribe": "One-Click"}).status_code == 404
    # Editing the organisation id inside A's token breaks its signature.
    token = unsubscribe_token_make(ana, "marketing")
    payload = signing.loads(token, salt=SALT)
    payload["o"] = bor.organisation_id
    tampered = token.split(":")[0] + ":" + signing.dumps(payload, salt=SALT).split(":")[-1]
    assert english_client().post(f"/u/{tampered}/").status_code == 404
    assert _state(bor) == {"sms": "given", "email": "given", "whatsapp": "given"}
    # A's own token works on A only.
    english_client().post(_path(unsubscribe_url(ana, "marketing")))
    assert _state(ana)["email"] == "withdrawn"
    assert _state(bor)["email"] == "given"


@pytest.mark.obligation("CON-2")
def test_unsubscribe_works_while_the_organisation_is_suspended(ana):
    record(ana)
    org = ana.organisation
    org.suspended_at = timezone.now()
    org.save(update_fields=["suspended_at"])
    english_client().post(_path(unsubscribe_url(ana, "marketing")))
    assert _state(ana)["sms"] == "withdrawn"


def test_the_pages_speak_slovenian_to_a_slovenian_contact(org_a):
    contact = make_contact(org_a, first_name="Maja", preferred_language="sl")
    record(contact)
    body = Client().get(_path(unsubscribe_url(contact, "marketing"))).content.decode()
    assert 'lang="sl"' in body
    assert "Clinic A: ne želite več prejemati trženjskih sporočil?" in body
    assert "Da, odjavi me" in body
    done = Client().post(_path(unsubscribe_url(contact, "marketing"))).content.decode()
    assert "Odjavljeni ste" in done
    prefs = Client().get(_path(preferences_url(contact))).content.decode()
    assert "Shrani moje izbire" in prefs
    assert "Strinjam se, da mi klinika pošilja novice" in prefs  # the Slovenian wording


@pytest.mark.obligation("CON-2")
def test_the_code_goes_out_in_the_page_language(org_a):
    Client().post("/c/clinic-a/", _signup_data(), HTTP_ACCEPT_LANGUAGE="sl")
    message = mail.outbox[-1]
    assert message.subject.startswith("Vaša koda") and "Clinic A" in message.subject
    assert "Vaša potrditvena koda je" in message.body


# --- preference page ----------------------------------------------------------------------------


def _prefs(contact):
    return _path(preferences_url(contact))


@pytest.mark.obligation("CON-2")
def test_preference_page_shows_the_derived_state(ana):
    record(ana, channel="all")
    record(ana, "withdrawn", channel="sms")
    response = english_client().get(_prefs(ana))
    assert response.status_code == 200
    form = response.context["form"]
    assert form["marketing__email"].value() is True
    assert form["marketing__sms"].value() is False
    assert form["surveys__email"].value() is False
    assert "Your choices with Clinic A" in response.content.decode()


@pytest.mark.obligation("CON-2")
def test_preference_page_writes_only_what_changed(ana):
    record(ana, channel="all")
    client = english_client(
        HTTP_USER_AGENT="Safari/18", REMOTE_ADDR="203.0.113.9", HTTP_ACCEPT_LANGUAGE="en"
    )
    before = set(_entries(ana).values_list("pk", flat=True))
    response = client.post(
        _prefs(ana),
        {
            "marketing__email": "on",
            "marketing__whatsapp": "on",  # sms turned off
            "surveys__email": "on",  # turned on
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith("?saved=1")
    new = list(_entries(ana).exclude(pk__in=before).order_by("pk"))
    assert [(e.purpose.slug, e.channel, e.status) for e in new] == [
        ("marketing", "sms", "withdrawn"),
        ("surveys", "email", "given"),
    ]
    assert {e.source for e in new} == {"preference_page"}
    given = new[1]
    assert given.wording.text.startswith("I agree")  # the English text the page showed
    assert (given.ip_address, given.user_agent) == ("203.0.113.9", "Safari/18")
    assert "Your choices are saved." in client.get(response["Location"]).content.decode()
    # Saving again unchanged writes nothing.
    client.post(
        _prefs(ana), {"marketing__email": "on", "marketing__whatsapp": "on", "surveys__email": "on"}
    )
    assert _entries(ana).count() == len(before) + 2


@pytest.mark.obligation("CON-2")
def test_preference_page_turns_everything_off_in_one_entry_per_purpose(ana):
    record(ana, channel="all")
    english_client().post(_prefs(ana), {})
    latest = _entries(ana).order_by("-pk").first()
    assert (latest.channel, latest.status, latest.source) == ("all", "withdrawn", "preference_page")
    assert _entries(ana).count() == 2


@pytest.mark.obligation("CON-2")
def test_preference_page_needs_a_valid_token(ana):
    assert english_client().get("/u/forged/preferences/").status_code == 404


# --- public consent form with double opt-in -----------------------------------------------------


def _signup_data(**overrides):
    data = {
        "first_name": "Nina",
        "last_name": "Kos",
        "email": "nina@example.test",
        "phone": "",
        "purposes": ["marketing", "surveys"],
        "channels": ["email"],
        "website": "",
        "started": form_started_stamp(time.time() - 10),
    }
    data.update(overrides)
    return data


def _code_from_mail() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


@pytest.fixture
def sms_outbox(settings):
    settings.CONSENT_SMS_BACKEND = "consent.sending.LocmemSmsBackend"
    sending.sms_outbox.clear()
    yield sending.sms_outbox
    sending.sms_outbox.clear()


@pytest.mark.obligation("CON-1", "CON-2")
def test_signup_form_shows_the_published_wording_in_the_page_language(org_a):
    wording_publish(
        organisation=org_a, purpose="marketing", version="2", language="en", text="News, v2."
    )
    body = english_client().get("/c/clinic-a/").content.decode()
    assert "Stay in touch with Clinic A" in body
    assert "News, v2." in body
    assert "I agree that the clinic may invite me to satisfaction" in body
    sl = english_client().get("/c/clinic-a/", HTTP_ACCEPT_LANGUAGE="sl").content.decode()
    assert "Strinjam se, da mi klinika pošilja novice" in sl


def test_signup_form_of_an_unknown_organisation_is_404(db):
    assert english_client().get("/c/nobody/").status_code == 404


@pytest.mark.obligation("CON-1", "CON-2")
def test_double_opt_in_by_email_creates_the_contact_and_records_consent(org_a):
    client = english_client(HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="192.0.2.44")
    response = client.post("/c/clinic-a/", _signup_data(), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302, response.content.decode()
    pending = PendingSignup.objects.get()
    assert pending.sent_to == "email" and pending.email == "nina@example.test"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["nina@example.test"]
    assert "Clinic A" in mail.outbox[0].subject
    code = _code_from_mail()
    assert code not in pending.code_hash
    # Nothing is a contact or a consent before the code.
    assert not Contact.objects.filter(organisation=org_a).exists()

    page = client.get(response["Location"])
    assert "We have sent a 6-digit code to your e-mail address." in page.content.decode()
    done = client.post(response["Location"], {"code": code})
    assert done.status_code == 200
    assert "Thank you, your choices are saved" in done.content.decode()
    contact = Contact.objects.get(organisation=org_a)
    assert (contact.first_name, contact.email, contact.source_kind) == (
        "Nina",
        "nina@example.test",
        "form",
    )
    entries = list(_entries(contact).order_by("pk"))
    assert [(e.purpose.slug, e.channel, e.status, e.source) for e in entries] == [
        ("marketing", "email", "given", "form"),
        ("surveys", "email", "given", "form"),
    ]
    shown = Wording.objects.get(organisation=org_a, purpose__slug="marketing", language="en")
    assert entries[0].wording_id == shown.pk
    assert (entries[0].ip_address, entries[0].user_agent) == ("192.0.2.44", "Firefox/140")
    assert not PendingSignup.objects.exists()
    # The confirmation links to the person's preference page.
    assert "/preferences/" in done.content.decode()


@pytest.mark.obligation("CON-2")
def test_double_opt_in_matches_an_existing_contact_by_the_verified_address(ana):
    client = english_client()
    response = client.post(
        "/c/clinic-a/",
        _signup_data(
            email="ANA@example.test",
            phone="041 123 456",
            purposes=["surveys"],
            channels=["email", "sms", "whatsapp"],
        ),
    )
    client.post(response["Location"], {"code": _code_from_mail()})
    assert Contact.objects.filter(organisation=ana.organisation).count() == 1
    entry = _entries(ana).get()
    assert (entry.purpose.slug, entry.channel) == ("surveys", "all")


@pytest.mark.obligation("CON-2")
def test_a_phone_only_signup_gets_the_code_by_sms(org_a, sms_outbox):
    client = english_client()
    response = client.post(
        "/c/clinic-a/", _signup_data(email="", phone="041 555 666", channels=["sms"])
    )
    assert response.status_code == 302
    assert not mail.outbox
    (sms,) = sms_outbox
    assert sms.to == "+38641555666"
    code = re.search(r"\b(\d{6})\b", sms.text).group(1)
    client.post(response["Location"], {"code": code})
    contact = Contact.objects.get(organisation=org_a)
    assert contact.phone == "+38641555666"
    assert _entries(contact).filter(channel="sms", status="given").count() == 2


def test_phone_only_signup_asks_for_an_email_when_sms_is_not_available(org_a, settings):
    settings.MESSAGING_PROVIDER = "infobip"
    response = english_client().post(
        "/c/clinic-a/", _signup_data(email="", phone="041 555 666", channels=["sms"])
    )
    assert response.status_code == 400
    assert "Please add your e-mail address" in response.content.decode()
    assert not PendingSignup.objects.exists()


@pytest.mark.obligation("CON-2")
def test_wrong_code_counts_attempts_and_locks_after_five(org_a):
    client = english_client()
    response = client.post("/c/clinic-a/", _signup_data())
    code = _code_from_mail()
    wrong = "000000" if code != "000000" else "111111"
    for left in range(MAX_ATTEMPTS - 1, 0, -1):
        page = client.post(response["Location"], {"code": wrong})
        assert page.status_code == 400
        assert f"({left} left)" in page.content.decode()
    page = client.post(response["Location"], {"code": wrong})
    assert "Too many wrong codes" in page.content.decode()
    # Even the right code is refused now.
    page = client.post(response["Location"], {"code": code})
    assert "Too many wrong codes" in page.content.decode()
    assert not Contact.objects.filter(organisation=org_a).exists()


@pytest.mark.obligation("CON-2")
def test_expired_code_is_refused_and_purged(org_a, time_machine):
    client = english_client()
    response = client.post("/c/clinic-a/", _signup_data())
    code = _code_from_mail()
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=31))
    page = client.post(response["Location"], {"code": code})
    assert "This code has expired" in page.content.decode()
    assert not Contact.objects.filter(organisation=org_a).exists()
    assert pending_signups_purge(dry_run=True) == 1
    assert PendingSignup.objects.count() == 1
    assert pending_signups_purge() == 1
    assert not PendingSignup.objects.exists()
    assert client.get(response["Location"]).status_code == 404


def test_a_code_page_of_another_organisation_is_not_found(org_a, org_b):
    client = english_client()
    response = client.post("/c/clinic-a/", _signup_data())
    reference = PendingSignup.objects.get().reference
    assert client.get(f"/c/clinic-b/confirm/{reference}/").status_code == 404
    assert response.status_code == 302


@pytest.mark.obligation("CON-2")
def test_honeypot_and_too_fast_posts_send_nothing(org_a):
    client = english_client()
    for data in (
        _signup_data(website="http://spam.example"),
        _signup_data(started=form_started_stamp(time.time())),
        _signup_data(started="forged"),
    ):
        response = client.post("/c/clinic-a/", data)
        assert response.status_code == 400
        assert "Please check your details and send the form again." in response.content.decode()
    assert not mail.outbox
    assert not PendingSignup.objects.exists()


def test_signup_form_says_what_to_fix(org_a):
    response = english_client().post(
        "/c/clinic-a/",
        _signup_data(first_name="", last_name="", email="", purposes=[], channels=["sms"]),
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Tick at least one kind of message." in body
    response = english_client().post("/c/clinic-a/", _signup_data(channels=["sms"]))
    assert "Add your phone number, or untick SMS and WhatsApp." in response.content.decode()


@pytest.mark.obligation("CON-2")
def test_signups_are_rate_limited_per_network(org_a, monkeypatch):
    from consent import public_views

    monkeypatch.setattr(public_views, "SIGNUPS_PER_ADDRESS_HOUR", 2)
    client = english_client(REMOTE_ADDR="198.51.100.20")
    for n in range(2):
        response = client.post("/c/clinic-a/", _signup_data(email=f"p{n}@example.test"))
        assert response.status_code == 302
    response = client.post("/c/clinic-a/", _signup_data(email="p3@example.test"))
    assert response.status_code == 429
    assert "Please try again later" in response.content.decode()
    assert len(mail.outbox) == 2
    # Another network is not held up.
    other = english_client(REMOTE_ADDR="198.51.100.21")
    assert other.post("/c/clinic-a/", _signup_data(email="p4@example.test")).status_code == 302


@pytest.mark.obligation("CON-2")
def test_codes_to_one_address_are_rate_limited(org_a):
    for n in range(3):
        client = english_client(REMOTE_ADDR=f"198.51.100.{30 + n}")
        assert client.post("/c/clinic-a/", _signup_data()).status_code == 302
    response = english_client(REMOTE_ADDR="198.51.100.40").post("/c/clinic-a/", _signup_data())
    assert "already sent several codes" in response.content.decode()
    assert len(mail.outbox) == 3


def test_a_suspended_clinic_takes_no_signups(org_a):
    org_a.suspended_at = timezone.now()
    org_a.save(update_fields=["suspended_at"])
    response = english_client().post("/c/clinic-a/", _signup_data())
    assert "cannot take sign-ups online" in response.content.decode()
    assert not mail.outbox
