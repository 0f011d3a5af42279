"""Campaign statistics (MSG-10): right counts, aggregates only, small cells masked with
secondary suppression, a fixed number of queries, one organisation's messages only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.materialise import campaign_materialise
from campaigns.models import Campaign
from campaigns.services import campaign_approve, campaign_submit
from campaigns.stats import MASK, campaign_stats, suppress
from messaging.models import Message, MessageEvent
from tests.campaigns.conftest import patient
from tests.consent.conftest import record

START = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)


def sent_out(campaign, staff, admin, *, extra=12, org=None):
    """Materialise the campaign for the population plus ``extra`` consenting contacts."""
    for n in range(extra):
        record(patient(org, 100 + n), channel="sms")
    campaign_submit(campaign=campaign, actor=staff)
    campaign_approve(campaign=campaign, actor=admin)
    campaign_materialise(campaign.pk, now=START)
    Campaign.objects.filter(pk=campaign.pk).update(started_at=START)
    campaign.refresh_from_db()
    return list(Message.objects.filter(campaign_id=campaign.pk).order_by("pk"))


def set_status(message, status, *, sent_at=None, final_at=None, parts=None, reasons=()):
    Message.objects.filter(pk=message.pk).update(
        status=status,
        sent_at=sent_at,
        final_at=final_at,
        parts_reported=parts,
        refusal_reasons=list(reasons),
    )


def event(message, kind, key, *, at=None, **detail):
    MessageEvent.objects.create(
        organisation_id=message.organisation_id,
        message=message,
        kind=kind,
        at=at or START,
        source="patient" if kind == "clicked" else "api",
        detail=detail,
        provider_event_key=key,
    )


@pytest.fixture
def outcome(campaign, population, staff_a, admin_a, org_a):
    """15 messages: 6 delivered, 2 sent, 1 undeliverable, 1 expired, 2 refused for the
    frequency cap, 1 refused as withdrawn, 1 cancelled, 1 still queued."""
    messages = sent_out(campaign, staff_a, admin_a, org=org_a)
    assert len(messages) == 15, [m.contact_id for m in messages]
    hour = dt.timedelta(hours=1)
    for i, m in enumerate(messages[:6]):
        # Two sent in the first hour, the rest on day three; delivered an hour later.
        sent_at = START + (hour * i if i < 2 else dt.timedelta(hours=50))
        set_status(m, "delivered", sent_at=sent_at, final_at=sent_at + hour, parts=3)
    for m in messages[6:8]:
        set_status(m, "sent", sent_at=START + hour)
    set_status(messages[8], "undeliverable", sent_at=START, final_at=START + hour)
    set_status(messages[9], "expired", sent_at=START, final_at=START + 2 * hour)
    for m in messages[10:12]:
        set_status(m, "refused", final_at=START, reasons=["frequency_cap"])
    set_status(messages[12], "refused", final_at=START, reasons=["no_consent", "withdrawn"])
    set_status(messages[13], "cancelled", final_at=START)
    # Clicks on three messages (one clicked two links: still one message), actions on two.
    event(messages[0], "clicked", "click:1", link=1)
    event(messages[0], "clicked", "click:2", link=2)
    event(messages[1], "clicked", "click:1", link=1)
    event(messages[6], "clicked", "click:1", link=1)
    event(messages[0], "action", "action:appointment_booked", action="appointment_booked")
    event(messages[2], "action", "action:appointment_booked", action="appointment_booked")
    event(messages[2], "action", "action:voucher_used", action="voucher_used")
    return messages


@pytest.mark.obligation("MSG-10")
def test_counts_for_a_campaign_with_every_outcome(campaign, outcome, org_a):
    # Unsubscribes: by link after the message (counted), by staff (not the patient's answer),
    # by link before the message was sent (not caused by it), and by link 31 days later.
    contacts = {m.pk: m.contact for m in outcome}
    record(
        contacts[outcome[0].pk],
        "withdrawn",
        channel="sms",
        source="unsubscribe_link",
        recorded_at=START + dt.timedelta(hours=2),
    )
    record(
        contacts[outcome[1].pk],
        "withdrawn",
        channel="sms",
        source="staff",
        recorded_at=START + dt.timedelta(hours=2),
    )
    record(
        contacts[outcome[6].pk],
        "withdrawn",
        channel="all",
        source="stop_reply",
        recorded_at=START + dt.timedelta(hours=3),
    )
    record(
        contacts[outcome[7].pk],
        "withdrawn",
        channel="sms",
        source="preference_page",
        recorded_at=START + dt.timedelta(days=31, hours=2),
    )
    record(
        contacts[outcome[8].pk],
        "withdrawn",
        channel="sms",
        source="unsubscribe_link",
        recorded_at=START - dt.timedelta(hours=1),
    )

    stats = campaign_stats(Campaign.objects.get(pk=campaign.pk), now=START + dt.timedelta(days=5))
    t = stats.totals
    assert stats.targeted == 25 and stats.audience_total == 25
    assert (t.queued, t.waiting, t.held, t.cancelled, t.refused) == (15, 1, 0, 1, 3)
    assert (t.sent, t.delivered, t.undeliverable, t.failed) == (10, 6, 2, 0)
    assert (t.clicked, t.conversions, stats.unsubscribed) == (3, 2, 2)
    # Reported parts where there are any (6 x 3), the estimate for the other four sent.
    assert t.cost_segments == 18 + sum(m.parts_estimated for m in outcome[6:10])
    # Materialisation's exclusions plus dispatch refusals, each under its first reason.
    assert stats.excluded["frequency_cap"] == 2
    assert stats.excluded["withdrawn"] == campaign.exclusions["withdrawn"] + 1
    assert stats.excluded_total == sum(campaign.exclusions.values()) + 3
    assert list(stats.by_channel) == ["sms"] and vars(stats.by_channel["sms"]) == vars(t)
    assert stats.funnel == [
        ("targeted", 25),
        ("queued", 15),
        ("sent", 10),
        ("delivered", 6),
        ("clicked", 3),
        ("converted", 2),
    ]
    # Hourly for 48 h, then daily. Sent: hour 0 three, hour 1 three, the day from +48 h four.
    # Delivered (the report's time): hour 1, hour 2, and four in that day.
    series = stats.series
    assert [b.width for b in series[:48]] == ["hour"] * 48 and series[48].width == "day"
    assert series[48].start == START + dt.timedelta(hours=48)
    assert (series[0].sent, series[1].sent, series[48].sent) == (3, 3, 4)
    assert (series[1].delivered, series[2].delivered, series[48].delivered) == (1, 1, 4)
    assert sum(b.sent for b in series) == t.sent
    assert sum(b.delivered for b in series) == t.delivered


@pytest.mark.obligation("MSG-10")
def test_cells_under_five_are_masked_and_nothing_names_a_person(campaign, outcome):
    shown = campaign_stats(Campaign.objects.get(pk=campaign.pk)).masked()
    counts = shown["counts"]
    assert counts["queued"] == 15 and counts["sent"] == 10 and counts["delivered"] == 6
    assert counts["clicked"] == MASK and counts["conversions"] == MASK
    assert counts["unsubscribed"] == 0  # an empty cell describes nobody
    assert shown["excluded"]["frequency_cap"] == MASK
    assert {f["step"]: f["count"] for f in shown["funnel"]}["clicked"] == MASK
    assert shown["by_channel"]["sms"]["undeliverable"] == MASK
    assert shown["series"][0]["sent"] == MASK and shown["series"][2]["sent"] == 0
    # Every number shown is 0 or at least 5 (the campaign's own id aside), and nothing is
    # keyed by a contact or a message.

    def leaves(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from leaves(v)
        elif isinstance(value, list):
            for v in value:
                yield from leaves(v)
        else:
            yield value

    numbers = [v for v in leaves(shown) if isinstance(v, int) and not isinstance(v, bool)]
    assert [n for n in numbers if 0 < n < 5 and n != campaign.pk] == []
    assert "contact" not in str(shown) and "message" not in str(shown)


@pytest.mark.obligation("MSG-10")
def test_a_lone_masked_cell_takes_the_next_smallest_with_it():
    # 3 could be had as 30 - 20 - 7; masking the 7 too leaves only "3 + 7 = 10".
    assert suppress({"a": 20, "b": 7, "c": 3}) == {"a": 20, "b": MASK, "c": MASK}
    # Two masked cells already hide each other; zeros stay zeros.
    assert suppress({"a": 20, "b": 2, "c": 3, "d": 0}) == {"a": 20, "b": MASK, "c": MASK, "d": 0}
    # Nothing masked: nothing to protect.
    assert suppress({"a": 20, "b": 7}) == {"a": 20, "b": 7}
    # A cell shown elsewhere is not chosen: masking it here would not hide it.
    assert suppress({"sent": 6, "refused": 3, "held": 9}, avoid=("sent",)) == {
        "sent": 6,
        "refused": MASK,
        "held": MASK,
    }
    # The total is masked: so is every non-zero part (one channel's cell is the total).
    assert suppress({"sms": 6, "email": 0}, hidden_total=True) == {"sms": MASK, "email": 0}


@pytest.mark.obligation("MSG-10")
def test_no_masked_exclusion_reason_can_be_had_by_subtraction(campaign, outcome):
    shown = campaign_stats(Campaign.objects.get(pk=campaign.pk)).masked()
    raw = campaign_stats(Campaign.objects.get(pk=campaign.pk)).excluded
    excluded = shown["excluded"]
    masked = [k for k, v in excluded.items() if v == MASK]
    assert masked, excluded
    if len(masked) == 1:  # pragma: no cover - the rule below makes this impossible
        pytest.fail("a lone masked reason is the total minus the others")
    # Shown total minus every shown reason leaves the sum of at least two masked ones.
    total = shown["counts"]["excluded_total"]
    shown_sum = sum(v for v in excluded.values() if v != MASK)
    assert total - shown_sum == sum(raw[k] for k in masked) and len(masked) >= 2


def test_secondary_suppression_picks_a_larger_reason_when_one_alone_is_small(org_a):
    stats = campaign_stats(
        Campaign(
            pk=999_999,
            organisation=org_a,
            channels=["sms"],
            targeted=40,
            exclusions={"no_consent": 20, "withdrawn": 9, "suppressed": 3, "lapsed": 0},
        )
    )
    shown = stats.masked()
    assert shown["excluded"] == {"suppressed": MASK, "withdrawn": MASK, "no_consent": 20}
    assert shown["counts"]["excluded_total"] == 32


def bulk_messages(org, campaign, n, *, status="delivered"):
    Message.objects.bulk_create(
        [
            Message(
                organisation=org,
                channel="sms" if i % 3 else "email",
                kind="marketing",
                purpose="marketing",
                dedupe_key=campaign.dedupe_key,
                campaign_id=campaign.pk,
                status=status if i % 5 else "refused",
                refusal_reasons=[] if i % 5 else ["frequency_cap"],
                sent_at=START + dt.timedelta(hours=i % 70) if i % 5 else None,
                final_at=START + dt.timedelta(hours=i % 70, minutes=5),
            )
            for i in range(n)
        ]
    )
    messages = list(Message.objects.filter(campaign_id=campaign.pk).order_by("pk")[: n // 4])
    for m in messages:
        event(m, "clicked", "click:1")


@pytest.mark.obligation("MSG-10")
def test_a_fixed_number_of_queries_whatever_the_size(campaign, org_a):
    Campaign.objects.filter(pk=campaign.pk).update(started_at=START, channels=["sms", "email"])
    campaign.refresh_from_db()
    bulk_messages(org_a, campaign, 10)
    with CaptureQueriesContext(connection) as small:
        few = campaign_stats(campaign)
    Message.objects.filter(campaign_id=campaign.pk).delete()
    bulk_messages(org_a, campaign, 200)
    with CaptureQueriesContext(connection) as large:
        many = campaign_stats(campaign)
    assert few.totals.queued == 10 and many.totals.queued == 200
    assert many.totals.clicked == 50 and many.excluded["frequency_cap"] == 40
    assert len(small) == len(large) == 5, [q["sql"] for q in large.captured_queries]


@pytest.mark.obligation("MSG-10", "TEN-1")
def test_another_organisations_messages_are_never_counted(campaign, outcome, org_b):
    before = campaign_stats(Campaign.objects.get(pk=campaign.pk))
    # A row of another organisation claiming this campaign (id and dedupe key) is not ours.
    stranger = Message.objects.create(
        organisation=org_b,
        channel="sms",
        kind="marketing",
        purpose="marketing",
        dedupe_key=campaign.dedupe_key,
        campaign_id=campaign.pk,
        status="delivered",
        sent_at=START,
        final_at=START,
    )
    event(stranger, "clicked", "click:1")
    after = campaign_stats(Campaign.objects.get(pk=campaign.pk))
    assert vars(after.totals) == vars(before.totals)
    assert [(b.sent, b.delivered) for b in after.series] == [
        (b.sent, b.delivered) for b in before.series
    ]


def test_a_campaign_not_yet_sent_has_zeros_and_no_series(campaign):
    stats = campaign_stats(campaign, now=timezone.now())
    assert stats.totals.queued == 0 and stats.series == [] and stats.excluded == {}
    assert stats.masked()["counts"]["sent"] == 0
