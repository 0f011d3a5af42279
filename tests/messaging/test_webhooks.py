"""Infobip webhooks (MSG-6, MSG-7): authentication, raw receipts stored once, delivery reports
applied to the timeline idempotently, part counts recorded for metering.

The real path runs: the view stores the receipt, the on-commit hook enqueues the Celery task, and
Celery runs it eagerly in the test (the same task body a worker runs)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import time_machine

from messaging import dispatch
from messaging.models import Message, MessageEvent, ProviderAccount
from messaging.ratelimit import limiter
from messaging.receipts import WebhookReceipt
from messaging.services import message_enqueue, provider_account_for

pytestmark = pytest.mark.django_db

SECRET = "profile-secret-7f3a"
DAYTIME = dt.datetime(2025, 6, 10, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def eager_celery():
    from carely.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def webhook_account(organisation, secret: str = SECRET) -> ProviderAccount:
    """The organisation's provider account with the subscription profile's secret set."""
    account = provider_account_for(organisation)
    account.webhook_secret = secret
    account.save(update_fields=["webhook_secret"])
    return account


@pytest.fixture
def account_a(org_a) -> ProviderAccount:
    return webhook_account(org_a)


def basic(password: str, user: str = "infobip") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(client, url, payload, *, password=SECRET, capture=None, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if password is not None:
        headers.setdefault("HTTP_AUTHORIZATION", basic(password))
    if capture is None:
        return client.post(url, body, content_type="application/json", **headers)
    with capture(execute=True):
        return client.post(url, body, content_type="application/json", **headers)


def reports_url(account) -> str:
    return f"/webhooks/infobip/{account.webhook_token}/reports/"


def inbound_url(account) -> str:
    return f"/webhooks/infobip/{account.webhook_token}/inbound/"


def sent_reminder(org, contact, key="staff:r1") -> Message:
    """A transactional SMS handed to the (fake) provider by the real dispatcher."""
    with time_machine.travel(DAYTIME, tick=True):
        limiter.cache_clear()
        message = message_enqueue(
            organisation=org,
            contact=contact,
            channel="sms",
            kind="transactional",
            purpose="appointment_reminders",
            text="Termin jutri ob 9h.",
            dedupe_key=key,
        )
        dispatch.dispatch_batch(queue="messaging-transactional")
    message.refresh_from_db()
    assert message.status == "sent"
    return message


def v3_report(
    our_id,
    *,
    group=3,
    group_name="DELIVERED",
    status_id=5,
    name="DELIVERED_TO_HANDSET",
    done="2025-06-10T08:00:07.000+0000",
    parts=2,
    error=None,
):
    return {
        "bulkId": "bulk-1",
        "messageId": our_id,
        "to": "38641123456",
        "sender": "Carely",
        "sentAt": "2025-06-10T08:00:01.000+0000",
        "doneAt": done,
        "messageCount": parts,
        "mccMnc": "29340",
        "price": {"pricePerMessage": 0.02, "currency": "EUR"},
        "status": {
            "groupId": group,
            "groupName": group_name,
            "id": status_id,
            "name": name,
            "description": "...",
        },
        "error": error
        or {
            "groupId": 0,
            "groupName": "OK",
            "id": 0,
            "name": "NO_ERROR",
            "description": "No Error",
            "permanent": False,
        },
        "platform": {"entityId": None, "applicationId": None},
    }


def v2_report(our_id, **kw):
    report = v3_report(our_id, **kw)
    report["from"] = report.pop("sender")
    report["smsCount"] = report.pop("messageCount")
    report.pop("platform")
    report["error"]["groupName"] = (
        "Ok" if report["error"]["groupId"] == 0 else report["error"]["groupName"]
    )
    return report


# --- authentication -------------------------------------------------------------------------------
@pytest.mark.obligation("MSG-7")
def test_wrong_token_and_wrong_secret_get_the_same_401_and_store_nothing(client, account_a, ana):
    message = sent_reminder(account_a.organisation, ana)
    payload = {"results": [v3_report(message.our_id)]}
    attempts = [
        post(client, "/webhooks/infobip/not-a-token/reports/", payload),
        post(client, reports_url(account_a), payload, password="wrong"),
        post(client, reports_url(account_a), payload, password=None),
        post(
            client,
            reports_url(account_a),
            payload,
            password=None,
            HTTP_X_CARELY_WEBHOOK_SECRET="wrong",
        ),
        post(client, reports_url(account_a), payload, HTTP_AUTHORIZATION="Basic !!notbase64"),
    ]
    for response in attempts:
        assert response.status_code == 401
        assert response.json() == {"detail": "Authentication failed."}
        assert response["WWW-Authenticate"].startswith("Basic")
    assert not WebhookReceipt.objects.exists()
    message.refresh_from_db()
    assert message.status == "sent"
    assert client.get(reports_url(account_a)).status_code == 405


@pytest.mark.obligation("MSG-7")
def test_an_organisation_without_a_webhook_secret_accepts_nothing(client, org_a, settings):
    settings.INFOBIP_WEBHOOK_SECRET = ""
    account = provider_account_for(org_a)  # token, but no secret anywhere
    response = post(client, reports_url(account), {"results": []}, password="")
    assert response.status_code == 401
    settings.INFOBIP_WEBHOOK_SECRET = "platform-secret"
    response = post(client, reports_url(account), {"results": []}, password="platform-secret")
    assert response.status_code == 200


@pytest.mark.obligation("MSG-7")
def test_the_static_secret_header_is_accepted_like_basic_auth(
    client, account_a, ana, django_capture_on_commit_callbacks
):
    message = sent_reminder(account_a.organisation, ana)
    response = post(
        client,
        reports_url(account_a),
        {"results": [v3_report(message.our_id)]},
        password=None,
        capture=django_capture_on_commit_callbacks,
        HTTP_X_CARELY_WEBHOOK_SECRET=SECRET,
    )
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    message.refresh_from_db()
    assert message.status == "delivered"


@pytest.mark.obligation("MSG-7")
def test_another_organisations_token_cannot_touch_this_organisations_messages(
    client, account_a, org_b, ana, django_capture_on_commit_callbacks
):
    message = sent_reminder(account_a.organisation, ana)
    account_b = provider_account_for(org_b)
    account_b.webhook_secret = "b-secret"
    account_b.save()
    response = post(
        client,
        reports_url(account_b),
        {"results": [v3_report(message.our_id)]},
        password="b-secret",
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200  # accepted, but the id is not organisation B's
    message.refresh_from_db()
    assert message.status == "sent"
    assert not MessageEvent.objects.filter(message=message, source="webhook").exists()
    assert "unknown=1" in WebhookReceipt.objects.get(organisation=org_b).outcome


@pytest.mark.obligation("MSG-7")
def test_malformed_bodies_are_refused_after_authentication(client, account_a):
    assert post(client, reports_url(account_a), b"not json").status_code == 400
    assert post(client, reports_url(account_a), {"messages": []}).status_code == 400
    assert not WebhookReceipt.objects.exists()


# --- delivery reports -----------------------------------------------------------------------------
@pytest.mark.obligation("MSG-6", "MSG-7")
def test_a_delivery_report_updates_status_timeline_and_parts_with_the_reports_own_time(
    client, account_a, ana, django_capture_on_commit_callbacks
):
    message = sent_reminder(account_a.organisation, ana)
    response = post(
        client,
        reports_url(account_a),
        {"results": [v3_report(message.our_id, parts=2)]},
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200
    message.refresh_from_db()
    done = dt.datetime(2025, 6, 10, 8, 0, 7, tzinfo=dt.UTC)
    assert message.status == "delivered"
    assert message.final_at == done
    assert message.parts_reported == 2  # the provider's count is what is metered
    event = MessageEvent.objects.get(message=message, source="webhook")
    assert event.kind == "delivered" and event.at == done
    assert event.detail["status_name"] == "DELIVERED_TO_HANDSET" and event.detail["parts"] == 2
    assert "38641123456" not in json.dumps(event.detail)  # codes and ids only
    receipt = WebhookReceipt.objects.get()
    assert receipt.processed_at is not None and receipt.outcome.startswith("reports applied=1")


@pytest.mark.obligation("MSG-7")
def test_the_same_report_twice_changes_nothing(
    client, account_a, ana, django_capture_on_commit_callbacks
):
    message = sent_reminder(account_a.organisation, ana)
    other = sent_reminder(account_a.organisation, ana, key="staff:r2")
    payload = {"results": [v3_report(message.our_id)]}
    first = post(
        client, reports_url(account_a), payload, capture=django_capture_on_commit_callbacks
    )
    message.refresh_from_db()
    before = (message.status, message.final_at, message.parts_reported)
    events = MessageEvent.objects.filter(message=message).count()
    # The identical POST again (Infobip retries when our 200 got lost) ...
    again = post(
        client, reports_url(account_a), payload, capture=django_capture_on_commit_callbacks
    )
    assert (first.json(), again.json()) == ({"status": "accepted"}, {"status": "already_received"})
    assert WebhookReceipt.objects.count() == 1
    # ... and the same report inside another batch, as a different body.
    batch = {"results": [v3_report(other.our_id), v3_report(message.our_id)]}
    post(client, reports_url(account_a), batch, capture=django_capture_on_commit_callbacks)
    message.refresh_from_db()
    assert (message.status, message.final_at, message.parts_reported) == before
    assert MessageEvent.objects.filter(message=message).count() == events
    assert "duplicates=1" in WebhookReceipt.objects.order_by("-pk").first().outcome
    other.refresh_from_db()
    assert other.status == "delivered"


@pytest.mark.obligation("MSG-6", "MSG-7")
def test_v2_reports_with_a_permanent_error_end_the_message_undeliverable(
    client, account_a, ana, django_capture_on_commit_callbacks
):
    message = sent_reminder(account_a.organisation, ana)
    error = {
        "groupId": 1,
        "groupName": "HANDSET_ERRORS",
        "id": 1,
        "name": "EC_UNKNOWN_SUBSCRIBER",
        "description": "Unknown subscriber",
        "permanent": True,
    }
    report = v2_report(
        message.our_id,
        group=2,
        group_name="UNDELIVERABLE",
        status_id=9,
        name="UNDELIVERABLE_NOT_DELIVERED",
        parts=1,
        error=error,
    )
    post(
        client,
        reports_url(account_a),
        {"results": [report]},
        capture=django_capture_on_commit_callbacks,
    )
    message.refresh_from_db()
    assert message.status == "undeliverable" and message.error_permanent
    assert message.last_error == "EC_UNKNOWN_SUBSCRIBER" and message.parts_reported == 1
    event = MessageEvent.objects.get(message=message, source="webhook")
    assert event.detail["permanent"] is True and event.detail["retryable"] is False


@pytest.mark.obligation("MSG-6", "MSG-7")
def test_a_temporary_error_is_recorded_as_retryable(
    client, account_a, ana, django_capture_on_commit_callbacks
):
    message = sent_reminder(account_a.organisation, ana)
    error = {
        "groupId": 1,
        "groupName": "HANDSET_ERRORS",
        "id": 27,
        "name": "EC_ABSENT_SUBSCRIBER",
        "permanent": False,
    }
    report = v3_report(
        message.our_id,
        group=4,
        group_name="EXPIRED",
        status_id=15,
        name="EXPIRED_EXPIRED",
        error=error,
    )
    post(
        client,
        reports_url(account_a),
        {"results": [report]},
        capture=django_capture_on_commit_callbacks,
    )
    message.refresh_from_db()
    assert message.status == "expired" and not message.error_permanent
    event = MessageEvent.objects.get(message=message, source="webhook")
    assert event.detail["retryable"] is True


@pytest.mark.obligation("MSG-6")
def test_an_intermediate_report_then_the_final_one_build_the_timeline_in_order(
    client, account_a, ana, django_capture_on_commit_callbacks
):
    message = sent_reminder(account_a.organisation, ana)
    operator = v3_report(
        message.our_id,
        status_id=2,
        name="DELIVERED_TO_OPERATOR",
        done="2025-06-10T08:00:03.000+0000",
    )
    handset = v3_report(message.our_id)
    # The final report arrives first; the late intermediate one must not undo it.
    for report in (handset, operator):
        post(
            client,
            reports_url(account_a),
            {"results": [report]},
            capture=django_capture_on_commit_callbacks,
        )
    message.refresh_from_db()
    assert message.status == "delivered"
    kinds = list(
        MessageEvent.objects.filter(message=message, source="webhook").values_list("kind", "at")
    )
    assert [k for k, _ in kinds] == ["sent", "delivered"]  # ordered by the reports' own times


@pytest.mark.obligation("MSG-7")
def test_the_sweep_applies_receipts_a_lost_task_left_and_deletes_old_ones(
    account_a, ana, django_capture_on_commit_callbacks
):
    from messaging.inbound import receipt_store, receipts_sweep

    message = sent_reminder(account_a.organisation, ana)
    body = json.dumps({"results": [v3_report(message.our_id)]}).encode()
    with django_capture_on_commit_callbacks(execute=False):  # the task never runs
        receipt, created = receipt_store(
            organisation=account_a.organisation, source="infobip_reports", body=body
        )
    assert created and receipt.processed_at is None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    with time_machine.travel(later):
        assert receipts_sweep() == {"reprocessed": 1, "deleted": 0}
    message.refresh_from_db()
    assert message.status == "delivered"
    with time_machine.travel(later + dt.timedelta(days=8)):
        assert receipts_sweep() == {"reprocessed": 0, "deleted": 1}
    assert not WebhookReceipt.objects.exists()
