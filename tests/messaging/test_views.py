"""Staff pages of messaging (MSG-3, MSG-6, MSG-2, CON-7, CNT-3): the persona matrix on every page
(anonymous, another organisation, the wrong role, the right role), the access log on content,
template checks and a preview that shows an SMS's encoding and parts, the one-off message."""

from __future__ import annotations

import pytest

from carely.audit.models import AccessLogEntry
from contacts.services import contact_restrict
from messaging.models import Message, MessageTemplate
from messaging.services import message_enqueue, provider_account_for, template_save
from tests.conftest import login

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(org_a, ana, reminder_sms) -> Message:
    return message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        template=reminder_sms,
        variables={"when": "jutri ob 9.00"},
        dedupe_key="staff:v1",
    )


def _content_log(org, contact):
    return AccessLogEntry.objects.for_organisation(org).filter(
        subject_type="contact", subject_id=str(contact.pk)
    )


def pages(message, contact, template):
    """Every page, with the permission it needs."""
    return {
        "/messages/": "view",
        f"/messages/{message.pk}/": "view",
        f"/messages/{message.pk}/content/": "view",
        "/messages/templates/": "view",
        f"/messages/templates/{template.pk}/": "view",
        "/messages/templates/new/": "send",
        f"/messages/templates/{template.pk}/new-version/": "send",
        f"/contacts/{contact.pk}/messages/": "view",
        f"/contacts/{contact.pk}/messages/send/": "send",
    }


@pytest.mark.obligation("MSG-6", "MSG-3", "TEN-1", "SEC-2")
def test_persona_matrix(client, org_a, ana, queued, reminder_sms, staff_a, dpo_a, staff_b):
    urls = pages(queued, ana, reminder_sms)
    for url in urls:  # anonymous: to the login page
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    login(client, staff_b)  # another organisation: its ids are not found
    for url in urls:
        if url in ("/messages/", "/messages/templates/", "/messages/templates/new/"):
            continue  # its own (empty) lists
        assert client.get(url).status_code == 404, url
    login(client, dpo_a)  # the DPO reads the log but does not send or write templates
    for url, need in urls.items():
        assert client.get(url).status_code == (403 if need == "send" else 200), url
    login(client, staff_a)
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.obligation("MSG-6", "TEN-1")
def test_other_organisations_lists_show_nothing_of_this_one(client, org_a, queued, staff_b):
    login(client, staff_b)
    assert f"/messages/{queued.pk}/" not in client.get("/messages/").content.decode()


@pytest.mark.obligation("CNT-3", "MSG-6")
def test_the_log_and_the_record_show_no_content_and_opening_it_is_access_logged(
    client, org_a, ana, queued, staff_a
):
    login(client, staff_a)
    log = client.get("/messages/").content.decode()
    record = client.get(f"/messages/{queued.pk}/").content.decode()
    for page in (log, record):
        assert "jutri ob 9.00" not in page and "+38641123456" not in page
    assert "queued" in record and "contract" in record  # status, timeline, legal basis
    assert not _content_log(org_a, ana).exists()
    content = client.get(f"/messages/{queued.pk}/content/").content.decode()
    assert "Pozdravljeni Ana, termin jutri ob 9.00" in content and "+38641123456" in content
    (entry,) = _content_log(org_a, ana)
    assert entry.actor_type == "user" and entry.actor_id == str(staff_a.pk)
    assert f"message:{queued.pk}" in entry.what and "body" in entry.what


@pytest.mark.obligation("MSG-6")
def test_the_log_filters_by_channel_kind_status_and_date(
    client, org_a, ana, bor, queued, offer_sms, staff_a
):
    offer = message_enqueue(
        organisation=org_a,
        contact=ana,
        channel="sms",
        kind="marketing",
        purpose="marketing",
        template=offer_sms,
        dedupe_key="campaign:1",
    )
    login(client, staff_a)

    def listed(**params) -> set[int]:
        body = client.get("/messages/", params).content.decode()
        return {m for m in (queued.pk, offer.pk) if f"/messages/{m}/" in body}

    assert listed() == {queued.pk, offer.pk}
    assert listed(kind="marketing") == {offer.pk}
    assert listed(channel="email") == set()
    assert listed(status="queued") == {queued.pk, offer.pk}
    assert listed(created_since="2000-01-01") == {queued.pk, offer.pk}
    assert listed(created_until="2000-01-01") == set()
    assert listed(status="nonsense") == set()  # an invalid filter shows nothing, not everything
    contact_page = client.get(f"/contacts/{bor.pk}/messages/").content.decode()
    assert f"/messages/{queued.pk}/" not in contact_page


@pytest.mark.obligation("MSG-3")
def test_template_checks_are_shown_and_nothing_is_saved(client, org_a, staff_a):
    login(client, staff_a)
    response = client.post(
        "/messages/templates/new/",
        {
            "name": "reminder-24h",
            "kind": "transactional",
            "channel": "sms",
            "language": "sl",
            "body": "Pozdravljeni {{ frist_name }}, termin {{ when }}.",
            "variables": "",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Unknown placeholder {{ frist_name }}. Did you mean {{ first_name }}?" in page.replace(
        "&#x27;", "'"
    )
    assert "Unknown placeholder {{ when }}" in page
    assert not MessageTemplate.objects.exists()


@pytest.mark.obligation("MSG-3")
def test_a_template_and_a_new_version(client, org_a, staff_a):
    login(client, staff_a)
    response = client.post(
        "/messages/templates/new/",
        {
            "name": "reminder-24h",
            "kind": "transactional",
            "channel": "sms",
            "language": "sl",
            "body": "Termin {{ when }}.",
            "variables": "when",
        },
    )
    first = MessageTemplate.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/messages/templates/{first.pk}/"
    )
    # The fixed fields cannot be changed by posting them.
    client.post(
        f"/messages/templates/{first.pk}/new-version/",
        {
            "name": "other",
            "kind": "transactional",
            "channel": "email",
            "language": "en",
            "body": "Vaš termin: {{ when }}.",
            "variables": "when",
        },
    )
    second = MessageTemplate.objects.get(version=2)
    assert (second.name, second.channel, second.language) == ("reminder-24h", "sms", "sl")
    first.refresh_from_db()
    assert first.retired_at is not None


@pytest.mark.obligation("MSG-3")
def test_the_preview_names_missing_variables_and_fills_sample_values(
    client, org_a, reminder_sms, staff_a
):
    login(client, staff_a)
    missing = client.get(f"/messages/templates/{reminder_sms.pk}/").content.decode()
    assert "No value for {{ when }}." in missing
    filled = client.get(
        f"/messages/templates/{reminder_sms.pk}/", {"sample": "when=jutri ob 9.00"}
    ).content.decode()
    assert "Pozdravljeni Ana, termin jutri ob 9.00 pri Clinic A." in filled


@pytest.mark.obligation("MSG-3")
def test_the_preview_shows_ucs2_for_slovenian_and_gsm7_after_transliteration(
    client, org_a, admin_a, staff_a
):
    template = template_save(
        organisation=org_a,
        name="opomnik",
        kind="transactional",
        channel="sms",
        language="sl",
        body="Spoštovani {{ first_name }}, vaš pregled je jutri ob {{ ura }}. Lep pozdrav, ž.",
        variables=["ura"],
    )
    url = f"/messages/templates/{template.pk}/"
    login(client, staff_a)
    before = client.get(url, {"sample": "ura=9.00"}).content.decode()
    assert '<strong id="preview-encoding">UCS-2</strong>' in before
    assert '<dd class="mono" id="preview-non-gsm">š ž</dd>' in before
    assert "With transliteration" in before
    # Staff may not change the organisation's setting; an admin may.
    assert (
        client.post("/messages/settings/transliteration/", {"sms_transliterate": "on"}).status_code
        == 403
    )
    login(client, admin_a)
    client.post("/messages/settings/transliteration/", {"sms_transliterate": "on"})
    assert provider_account_for(org_a).sms_transliterate
    after = client.get(url, {"sample": "ura=9.00"}).content.decode()
    assert '<strong id="preview-encoding">GSM-7</strong>' in after
    assert "Spostovani Ana, vas pregled je jutri ob 9.00. Lep pozdrav, z." in after
    assert '<strong id="preview-parts">1</strong>' in after


@pytest.mark.obligation("MSG-3", "MSG-8", "CNT-3")
def test_a_marketing_preview_with_a_chosen_contact_counts_the_opt_out_line(
    client, org_a, ana, offer_sms, staff_a
):
    login(client, staff_a)
    page = client.get(f"/messages/templates/{offer_sms.pk}/", {"contact": ana.pk}).content.decode()
    assert "Ana, ta mesec 20 % popusta na preglede.<br>Odjava: https://pep.example.test/u/" in page
    assert _content_log(org_a, ana).get().what == ["first_name", "last_name", "preferred_language"]


@pytest.mark.obligation("MSG-2", "CON-7")
def test_staff_send_a_one_off_message_from_the_contacts_page(
    client, org_a, ana, reminder_sms, staff_a
):
    login(client, staff_a)
    url = f"/contacts/{ana.pk}/messages/send/"
    missing = client.post(url, {"template": reminder_sms.pk, "purpose": "appointment_reminders"})
    assert "No value for {{ when }}." in missing.content.decode()
    response = client.post(
        url,
        {
            "template": reminder_sms.pk,
            "purpose": "appointment_reminders",
            "variables": "when=jutri ob 9.00",
        },
    )
    message = Message.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/messages/{message.pk}/"
    assert message.created_by == staff_a and message.legal_basis == "contract"
    assert message.kind == "transactional" and message.dedupe_key.startswith("staff:")


@pytest.mark.obligation("MSG-2", "CON-4")
def test_staff_see_every_refusal_reason(client, org_a, reminder_sms, staff_a):
    from tests.consent.conftest import make_contact

    eva = make_contact(org_a, first_name="Eva", phone="+38641222333")
    contact_restrict(contact=eva, reason="dispute")
    login(client, staff_a)
    page = client.post(
        f"/contacts/{eva.pk}/messages/send/",
        {"template": reminder_sms.pk, "purpose": "appointment_reminders", "variables": "when=9h"},
    ).content.decode()
    assert "This message may not be sent" in page
    assert "(restricted)" in page and "(no_relationship)" in page
    assert not Message.objects.exists()


@pytest.mark.obligation("SEC-2", "MSG-2")
def test_a_denied_send_changes_nothing(client, org_a, ana, reminder_sms, dpo_a):
    login(client, dpo_a)
    response = client.post(
        f"/contacts/{ana.pk}/messages/send/",
        {"template": reminder_sms.pk, "purpose": "appointment_reminders", "variables": "when=9h"},
    )
    assert response.status_code == 403 and not Message.objects.exists()
