"""The frequency cap on marketing messages at dispatch (MSG-4, issue 8): per organisation, per
contact over every channel, in a rolling window; over the cap the row ends ``refused`` with
``frequency_cap``; transactional messages are never capped; an admin changes it, audited."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carely.audit.models import AuditEvent
from messaging import dispatch
from messaging.frequency_cap import marketing_cap_set, marketing_caps, marketing_handed_counts
from messaging.models import Message, MessageTemplate
from messaging.providers import fake
from messaging.providers.base import ProviderError
from messaging.ratelimit import limiter
from messaging.receipts import MessagingOptions
from messaging.services import message_enqueue, template_save
from tests.conftest import login
from tests.consent.conftest import make_contact, record

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("MSG-4")]

BULK = "messaging-bulk"
# 10:00 in Ljubljana (CEST): outside the default quiet hours, as is every moment used below.
NOW = dt.datetime(2026, 6, 10, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _at_now():
    """Every test happens at NOW; history is made by travelling back from it."""
    with time_machine.travel(NOW, tick=False):
        limiter.cache_clear()
        yield
        fake.failures.clear()


_keys = iter(range(10**6))


def _email_template(org):
    found = MessageTemplate.objects.filter(organisation=org, name="offer", channel="email").first()
    return found or template_save(
        organisation=org,
        name="offer",
        kind="marketing",
        channel="email",
        language="sl",
        subject="Novost",
        body="Ta mesec popust.",
    )


def offer(org, contact, channel="sms", **kw):
    """A marketing message: SMS as text, e-mail from a template (an e-mail needs a subject)."""
    content = {"template": _email_template(org)} if channel == "email" else {"text": "Popust."}
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel=channel,
        kind="marketing",
        purpose="marketing",
        dedupe_key=f"campaign:{next(_keys)}",
        **content,
        **kw,
    )


def reminder(org, contact):
    return message_enqueue(
        organisation=org,
        contact=contact,
        channel="sms",
        kind="transactional",
        purpose="appointment_reminders",
        text="Termin jutri ob 9h.",
        dedupe_key=f"staff:{next(_keys)}",
    )


def fresh_rate_limits():
    """The rate buckets remember the last take; after travelling back in time they would see a
    take from the future and throttle."""
    limiter.cache_clear()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter("carely:msg:*"))
        if keys:
            client.delete(*keys)


def sent_before(org, contact, days_ago, channel="sms"):
    """A marketing message that really went out ``days_ago`` days before NOW (enqueued and
    dispatched then)."""
    with time_machine.travel(NOW - dt.timedelta(days=days_ago), tick=False):
        fresh_rate_limits()
        message = offer(org, contact, channel=channel)
        dispatch.dispatch_batch(queue=BULK)
    message.refresh_from_db()
    assert message.status == "sent", list(message.events.values_list("kind", "detail"))
    return message


def dispatch_now():
    with time_machine.travel(NOW, tick=False):
        fresh_rate_limits()
        return dispatch.dispatch_batch(queue=BULK)


def status(message):
    message.refresh_from_db()
    return message.status


def consenting(org, name, phone):
    contact = make_contact(
        org,
        first_name=name,
        phone=phone,
        email=f"{name}@example.test",
        relationship_status="active",
    )
    record(contact, channel="all", purpose="marketing")
    return contact


def test_a_contact_over_the_cap_is_not_sent_and_the_exclusion_says_why(org_a, ana, fake_providers):
    # Four in the last 30 days on two channels: the default cap (4 per 30 days) is reached.
    for days_ago, channel in ((20, "sms"), (10, "email"), (5, "email"), (1, "sms")):
        sent_before(org_a, ana, days_ago, channel=channel)
    other = consenting(org_a, "cilka", "+38641000111")
    fake_providers.clear()
    over = offer(org_a, ana, channel="email")
    fine = offer(org_a, other)

    report = dispatch_now()
    assert report.claimed == 2 and report.sent == 1 and report.refused == 1
    assert [m.our_id for m in fake_providers] == [fine.our_id]
    over.refresh_from_db()
    assert over.status == "refused" and over.refusal_reasons == ["frequency_cap"]
    assert over.handed_at is None and over.final_at is not None
    assert over.events.get(kind="refused").detail == {"reasons": ["frequency_cap"]}
    # Not deferred: nothing of it is left waiting for a later batch.
    assert dispatch_now().claimed == 0
    # The exclusion counts a campaign shows come from the refusal reasons.
    reasons = Counter(
        code
        for codes in Message.objects.filter(status="refused").values_list(
            "refusal_reasons", flat=True
        )
        for code in codes
    )
    assert reasons == {"frequency_cap": 1}


def test_the_window_rolls_a_message_handed_31_days_ago_no_longer_counts(org_a, ana, fake_providers):
    for days_ago in (31, 29, 15, 2):
        sent_before(org_a, ana, days_ago)
    first = offer(org_a, ana)
    assert dispatch_now().sent == 1 and status(first) == "sent"
    # Now the four in the window are 29, 15, 2 days old and the one just sent: full.
    second = offer(org_a, ana)
    assert dispatch_now().refused == 1 and status(second) == "refused"


def test_the_window_counts_when_the_message_was_handed_over_not_when_it_was_queued(
    org_a, ana, fake_providers
):
    # Queued 60 days ago for a date 3 days ago: it reached the patient 3 days ago and counts.
    with time_machine.travel(NOW - dt.timedelta(days=60), tick=False):
        late = offer(org_a, ana, send_at=NOW - dt.timedelta(days=3))
    with time_machine.travel(NOW - dt.timedelta(days=3), tick=False):
        dispatch.dispatch_batch(queue=BULK)
    assert status(late) == "sent"
    for days_ago in (2, 1):
        sent_before(org_a, ana, days_ago)
    assert marketing_handed_counts({org_a.pk: [ana.pk]}, marketing_caps([org_a.pk]), now=NOW) == {
        (org_a.pk, ana.pk): 3
    }


def test_transactional_messages_are_never_capped_and_never_counted(org_a, ana, fake_providers):
    for days_ago in (4, 3, 2, 1):
        sent_before(org_a, ana, days_ago)
    reminders = [reminder(org_a, ana) for _ in range(3)]
    report = dispatch_now()
    assert report.sent == 3 and report.refused == 0
    assert {status(m) for m in reminders} == {"sent"}

    # A patient with many reminders and no marketing message gets the offer.
    bor = consenting(org_a, "bor", "+38641000222")
    for _ in range(6):
        reminder(org_a, bor)
    dispatch_now()
    offer_to_bor = offer(org_a, bor)
    assert dispatch_now().sent == 1 and status(offer_to_bor) == "sent"


def test_the_organisation_setting_changes_the_cap(org_a, ana, fake_providers):
    for days_ago in (40, 3, 2):
        sent_before(org_a, ana, days_ago)
    marketing_cap_set(organisation=org_a, count=2, days=30)
    blocked = offer(org_a, ana)
    assert dispatch_now().refused == 1 and status(blocked) == "refused"

    # A longer window reaches back to the message 40 days ago.
    marketing_cap_set(organisation=org_a, count=3, days=60)
    blocked = offer(org_a, ana)
    assert dispatch_now().refused == 1 and status(blocked) == "refused"
    marketing_cap_set(organisation=org_a, count=4, days=60)
    allowed = offer(org_a, ana)
    assert dispatch_now().sent == 1 and status(allowed) == "sent"


def test_a_cap_of_zero_switches_it_off(org_a, ana, fake_providers):
    marketing_cap_set(organisation=org_a, count=0, days=30)
    for days_ago in range(6, 0, -1):
        sent_before(org_a, ana, days_ago)
    seventh = offer(org_a, ana)
    with CaptureQueriesContext(connection) as queries:
        assert dispatch_now().sent == 1
    assert status(seventh) == "sent"
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_rows_earlier_in_the_same_batch_count_earliest_due_first(org_a, ana, fake_providers):
    for days_ago in (9, 6, 3):
        sent_before(org_a, ana, days_ago)  # one below the cap
    fake_providers.clear()
    # Created in this order, but the last one was due first: it is the one that goes.
    with time_machine.travel(NOW - dt.timedelta(hours=2), tick=False):
        later = offer(org_a, ana, send_at=NOW - dt.timedelta(minutes=30))
        middle = offer(org_a, ana, channel="email", send_at=NOW - dt.timedelta(hours=1))
        earliest = offer(org_a, ana, send_at=NOW - dt.timedelta(hours=1))
    # Same due time for two of them: the lower id first.
    assert middle.pk < earliest.pk
    report = dispatch_now()
    assert report.claimed == 3 and report.sent == 1 and report.refused == 2
    assert [m.our_id for m in fake_providers] == [middle.our_id]
    assert (status(middle), status(earliest), status(later)) == ("sent", "refused", "refused")

    # A contact with no history and three rows in one batch: four allowed, so all three go.
    bor = consenting(org_a, "bor", "+38641000222")
    three = [offer(org_a, bor, channel=c) for c in ("sms", "email", "sms")]
    assert dispatch_now().sent == 3 and {status(m) for m in three} == {"sent"}


def test_another_organisations_messages_never_count(org_a, org_b, ana, fake_providers):
    # The same person is a patient of both clinics (same phone and e-mail).
    twin = consenting(org_b, "ana", ana.phone)
    for days_ago in (4, 3, 2, 1):
        sent_before(org_b, twin, days_ago)
    in_a = offer(org_a, ana)
    in_b = offer(org_b, twin)
    report = dispatch_now()  # one batch with both organisations' rows
    assert report.sent == 1 and report.refused == 1
    assert (status(in_a), status(in_b)) == ("sent", "refused")


def test_only_what_reached_the_provider_counts(org_a, ana, fake_providers):
    sent_before(org_a, ana, 3)
    sent_before(org_a, ana, 2)
    # A lost answer leaves the row in ``sending`` with handed_at: it may have arrived, it counts.
    with time_machine.travel(NOW - dt.timedelta(hours=26), tick=False):
        fresh_rate_limits()
        uncertain = offer(org_a, ana)
        fake.failures.append(ProviderError("read timeout", permanent=False, uncertain=True))
        dispatch.dispatch_batch(queue=BULK)
    uncertain.refresh_from_db()
    assert uncertain.status == "sending" and uncertain.handed_at is not None
    # A 429 puts the row back to waiting with handed_at cleared: it never reached the provider.
    with time_machine.travel(NOW - dt.timedelta(days=1), tick=False):
        fresh_rate_limits()
        throttled = offer(org_a, ana)
        fake.failures.append(ProviderError("busy", permanent=False, code="E429", http_status=429))
        dispatch.dispatch_batch(queue=BULK)
    assert status(throttled) == "deferred"
    fake_providers.clear()
    # 2 sent + 1 uncertain = 3 of 4: the throttled row (due again) goes, the new one does not.
    new = offer(org_a, ana)
    report = dispatch_now()
    assert report.sent == 1 and report.refused == 1
    assert (status(throttled), status(new)) == ("sent", "refused")


def test_one_count_query_for_a_whole_batch(org_a, fake_providers):
    contacts = [consenting(org_a, f"p{i}", f"+386410003{i:02d}") for i in range(30)]
    for contact in contacts:
        offer(org_a, contact)
        offer(org_a, contact, channel="email")
    with CaptureQueriesContext(connection) as queries:
        report = dispatch_now()
    assert report.sent == 60
    counts = [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and "GROUP BY" in counts[0]["sql"].upper()


@pytest.mark.postgres
def test_postgresql_counts_through_the_contact_index(org_a, ana, fake_providers):
    """On PostgreSQL the count reads the batch's contacts through an index on the contact
    (the planner prefers a sequential scan on a table this small, so that is switched off here
    to show the index fits the query; bench figures for 1M rows are in the commit report)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    for days_ago in (4, 3, 2, 1):
        sent_before(org_a, ana, days_ago)
    caps = marketing_caps([org_a.pk])
    with CaptureQueriesContext(connection) as queries:
        assert marketing_handed_counts({org_a.pk: [ana.pk]}, caps, now=NOW) == {
            (org_a.pk, ana.pk): 4
        }
    (sql,) = [q["sql"] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = on")
    # An index condition on the contact (the FK's, message_contact_created, or the dedupe
    # constraint's (organisation, ..., contact) as the planner likes): never the whole table.
    index_conditions = [line for line in plan.splitlines() if "Index Cond:" in line]
    assert "Seq Scan" not in plan, plan
    assert any("contact_id = " in line for line in index_conditions), plan
    # And the cap itself on PostgreSQL: over it, refused.
    over = offer(org_a, ana)
    assert dispatch_now().refused == 1 and status(over) == "refused"


# --- the settings page ------------------------------------------------------------------------
URL = "/messages/settings/frequency-cap/"


def test_an_admin_sees_the_rule_and_changes_the_cap_audited(client, admin_a, org_a):
    login(client, admin_a)
    page = client.get(URL).content.decode()
    assert "at most 4 marketing messages per person in any 30 days" in page.lower()
    assert "never limited" in page  # transactional messages explained
    response = client.post(URL, {"count": "2", "days": "14"})
    assert response.status_code == 302 and response["Location"] == URL
    options = MessagingOptions.objects.get(organisation=org_a)
    assert (options.marketing_cap_count, options.marketing_cap_days) == (2, 14)
    event = AuditEvent.objects.get(action="messaging.marketing_cap_changed")
    assert event.organisation_id == org_a.pk
    assert event.details == {"count": 2, "days": 14, "before": {"count": 4, "days": 30}}
    assert "any 14 days" in client.get(URL).content.decode()
    # Saving the same values again changes nothing and writes no second event.
    client.post(URL, {"count": "2", "days": "14"})
    assert AuditEvent.objects.filter(action="messaging.marketing_cap_changed").count() == 1
    client.post(URL, {"count": "0", "days": "14"})
    assert "Now: no limit." in client.get(URL).content.decode()


def test_bad_values_are_refused_with_the_field_named(client, admin_a, org_a):
    login(client, admin_a)
    response = client.post(URL, {"count": "-1", "days": "0"})
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"count", "days"}
    assert not MessagingOptions.objects.filter(organisation=org_a).exists()
    with pytest.raises(ValueError, match="marketing_cap_days"):
        marketing_cap_set(organisation=org_a, count=4, days=0)


def test_only_an_admin_may_change_it_and_only_for_their_organisation(
    client, staff_a, admin_b, org_a, org_b
):
    login(client, staff_a)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"count": "1", "days": "30"}).status_code == 403
    client.logout()
    login(client, admin_b)
    assert client.post(URL, {"count": "1", "days": "30"}).status_code == 302
    assert not MessagingOptions.objects.filter(organisation=org_a).exists()
    assert MessagingOptions.objects.get(organisation=org_b).marketing_cap_count == 1
    client.logout()
    anonymous = client.get(URL)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
