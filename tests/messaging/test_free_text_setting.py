"""An organisation admin decides whether the transactional API may send a practice system's own
text instead of a template (MSG-2): off by default, switched on the template page, audited."""

from __future__ import annotations

import pytest

from carely.audit.models import AuditEvent
from messaging.models import Message
from messaging.receipts import MessagingOptions
from tests.conftest import login
from tests.files.conftest import api_client

pytestmark = [pytest.mark.obligation("MSG-2"), pytest.mark.django_db]

URL = "/messages/settings/api-free-text/"


@pytest.fixture
def api_a(org_a):
    return api_client(org_a)


def _body(contact):
    return {
        "contact": contact.pk,
        "channel": "sms",
        "purpose": "appointment_reminders",
        "text": "Termin je prestavljen na 10.00.",
    }


def test_an_admin_allows_free_text_and_the_api_then_sends_it(client, admin_a, org_a, ana, api_a):
    refused = api_a.post("/api/v1/messages/", _body(ana), format="json")
    assert refused.status_code == 400
    assert "Texts sent through the API" in refused.json()["errors"][0]["message"]

    login(client, admin_a)
    page = client.get("/messages/templates/").content.decode()
    assert "The API sends templates only." in page and "Allow free text through the API" in page
    assert client.post(URL, {"api_free_text": "on"}).status_code == 302
    assert MessagingOptions.objects.get(organisation=org_a).api_free_text is True
    event = AuditEvent.objects.get(action="messaging.api_free_text_changed")
    assert event.details == {"allowed": True} and event.organisation_id == org_a.pk
    assert (
        "Free text through the API is allowed."
        in client.get("/messages/templates/").content.decode()
    )

    accepted = api_a.post("/api/v1/messages/", _body(ana), format="json")
    assert accepted.status_code == 202
    assert Message.objects.get().body == "Termin je prestavljen na 10.00."

    client.post(URL, {})  # switched off again
    assert MessagingOptions.objects.get(organisation=org_a).api_free_text is False
    assert AuditEvent.objects.filter(action="messaging.api_free_text_changed").count() == 2


def test_only_an_admin_may_change_it_and_only_for_their_organisation(
    client, staff_a, admin_b, org_a, org_b
):
    login(client, staff_a)
    assert client.post(URL, {"api_free_text": "on"}).status_code == 403
    client.logout()
    login(client, admin_b)
    assert client.post(URL, {"api_free_text": "on"}).status_code == 302
    assert not MessagingOptions.objects.filter(organisation=org_a, api_free_text=True).exists()
    assert MessagingOptions.objects.get(organisation=org_b).api_free_text is True
    client.logout()
    anonymous = client.post(URL, {"api_free_text": "on"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
