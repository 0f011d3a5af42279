"""Contract term arithmetic (TEN-2) as pure date maths.

A contract runs for a year from its activation date and renews itself for a further year at each
term end unless a non-renewal notice arrived at least 45 days before that end. Every anniversary
is counted from the activation date itself, never from the previous term's start, so a contract
activated on 29 February keeps returning to 29 February in leap years instead of drifting to the
28th for ever. In a year without 29 February its anniversary is 28 February (ADR 0002).
"""

from __future__ import annotations

import datetime as dt

NOTICE_DAYS = 45


def anniversary(activation: dt.date, years: int) -> dt.date:
    """The date ``years`` years after ``activation``; 29 February falls back to 28 February."""
    try:
        return activation.replace(year=activation.year + years)
    except ValueError:  # 29 February in a common year
        return activation.replace(year=activation.year + years, day=28)


def term_containing(activation: dt.date, day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the term that contains ``day``.

    A day before activation belongs to the first term: nothing runs yet, and the first term is
    the one any notice or question then concerns.
    """
    if day < activation:
        return activation, anniversary(activation, 1) - dt.timedelta(days=1)
    years = max(day.year - activation.year - 1, 0)
    while anniversary(activation, years + 1) <= day:
        years += 1
    start = anniversary(activation, years)
    return start, anniversary(activation, years + 1) - dt.timedelta(days=1)


def last_notice_day(term_last_day: dt.date) -> dt.date:
    """Latest day a non-renewal notice stops the renewal at the end of that term."""
    return term_last_day - dt.timedelta(days=NOTICE_DAYS)


def end_after_notice(activation: dt.date, notice_on: dt.date) -> dt.date:
    """Last day of service after a non-renewal notice received on ``notice_on``.

    In time, it ends the current term; late, the contract has already renewed once more and the
    notice ends the following term instead.
    """
    _start, last_day = term_containing(activation, notice_on)
    if notice_on <= last_notice_day(last_day):
        return last_day
    _next_start, next_last_day = term_containing(activation, last_day + dt.timedelta(days=1))
    return next_last_day
