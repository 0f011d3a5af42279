"""Quiet hours across the DST changes in Europe/Ljubljana (MSG-4, issue 8): a marketing message
due inside the window waits for its end in local time, which is a different UTC hour in summer
and winter time; a window ending in the spring gap or the repeated autumn hour ends at a real
instant that is never in the past. Instants below are computed by hand.

2026: clocks go 02:00 CET -> 03:00 CEST on 29 March (01:00 UTC) and 03:00 CEST -> 02:00 CET on
25 October (01:00 UTC)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from messaging import dispatch
from messaging.providers import fake
from messaging.ratelimit import limiter
from messaging.services import message_enqueue, provider_account_for

pytestmark = [pytest.mark.obligation("MSG-4")]

BULK = "messaging-bulk"
ZONE = "Europe/Ljubljana"
QUIET = (dt.time(21), dt.time(8))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# (22:00 local the evening before the change, 08:00 local the morning after)
SPRING = (utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 6, 0))  # 22:00 CET -> 08:00 CEST
AUTUMN = (utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 7, 0))  # 22:00 CEST -> 08:00 CET


@pytest.mark.parametrize(("evening", "morning"), [SPRING, AUTUMN], ids=["spring", "autumn"])
def test_the_window_ends_at_eight_local_on_the_night_of_the_change(evening, morning):
    assert dispatch.quiet_hours_end(evening, ZONE, *QUIET) == morning
    # Every moment of the night waits for the same morning, before and after the change.
    moment = evening
    while moment < morning:
        assert dispatch.quiet_hours_end(moment, ZONE, *QUIET) == morning, moment
        moment += dt.timedelta(minutes=15)
    assert dispatch.quiet_hours_end(morning, ZONE, *QUIET) is None


@pytest.mark.django_db
@pytest.mark.parametrize(("evening", "morning"), [SPRING, AUTUMN], ids=["spring", "autumn"])
def test_a_marketing_row_dispatched_at_ten_in_the_evening_goes_at_eight_next_morning(
    org_a, ana, fake_providers, evening, morning
):
    account = provider_account_for(org_a)
    account.quiet_hours_start, account.quiet_hours_end = QUIET
    account.save()
    with time_machine.travel(evening, tick=False):
        limiter.cache_clear()
        message = message_enqueue(
            organisation=org_a,
            contact=ana,
            channel="sms",
            kind="marketing",
            purpose="marketing",
            text="Popust ta mesec.",
            dedupe_key="campaign:dst",
        )
        report = dispatch.dispatch_batch(queue=BULK)
    assert report.deferred == 1 and fake_providers == []
    message.refresh_from_db()
    assert message.status == "deferred" and message.due_at == morning
    detail = message.events.get(kind="deferred").detail
    assert detail == {"reason": "quiet_hours", "until": morning.isoformat()}
    with time_machine.travel(morning - dt.timedelta(seconds=1), tick=False):
        assert dispatch.dispatch_batch(queue=BULK).claimed == 0
    with time_machine.travel(morning, tick=False):
        limiter.cache_clear()
        assert dispatch.dispatch_batch(queue=BULK).sent == 1
    assert [m.our_id for m in fake.outbox] == [message.our_id]


def test_a_window_ending_in_the_spring_gap_ends_when_the_clocks_jump():
    # 21:00-02:30: 02:30 does not exist on 29 March; the first moment the clocks show 02:30 or
    # later is the jump, 03:00 CEST = 01:00 UTC (not 03:30 CEST, not 01:30 CET).
    start, end = dt.time(21), dt.time(2, 30)
    jump = utc(2026, 3, 29, 1, 0)
    for now in (utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 0, 59, 59)):
        until = dispatch.quiet_hours_end(now, ZONE, start, end)
        assert until == jump and until > now
        assert until.astimezone(ZoneInfo(ZONE)).strftime("%H:%M %Z") == "03:00 CEST"
    assert dispatch.quiet_hours_end(jump, ZONE, start, end) is None


def test_a_window_ending_in_the_repeated_autumn_hour_is_never_in_the_past():
    # 21:00-02:30 on 25 October: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    start, end = dt.time(21), dt.time(2, 30)
    first, second = utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)
    assert dispatch.quiet_hours_end(utc(2026, 10, 24, 22, 0), ZONE, start, end) == first
    # 02:40 CEST: the window has ended.
    assert dispatch.quiet_hours_end(utc(2026, 10, 25, 0, 40), ZONE, start, end) is None
    # 02:10 CET, the second pass of the hour: the clocks show a time inside the window again;
    # it waits for the second 02:30, not the first (20 minutes in the past).
    now = utc(2026, 10, 25, 1, 10)
    until = dispatch.quiet_hours_end(now, ZONE, start, end)
    assert until == second and until > now


def test_a_daytime_window_on_the_day_of_the_change():
    # 12:00-14:00 on 29 March (CEST since 03:00): ends 14:00 CEST = 12:00 UTC.
    assert dispatch.quiet_hours_end(
        utc(2026, 3, 29, 10, 30), ZONE, dt.time(12), dt.time(14)
    ) == utc(2026, 3, 29, 12, 0)
