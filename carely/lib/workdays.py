"""Slovenian working days (TEN-6).

A working day is a day banks are open in Slovenia: Monday to Friday and not a Slovenian public
holiday that is a day off work. The calendar comes from the ``holidays`` package (Easter Monday and
Whit Sunday included, one-off days such as the 2023 Day of Solidarity too), so nobody maintains a
list of dates by hand. Deadlines count calendar days unless a rule says working days; both helpers
live here so callers never write their own loop.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _holidays_for(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("SI", years=year).keys())


def holiday_name(day: dt.date) -> str | None:
    """The Slovenian public holiday on ``day``, or None."""
    return holidays.country_holidays("SI", years=day.year).get(day)


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _holidays_for(day.year)


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The date ``days`` working days after ``start`` (before it, for a negative count).

    ``start`` itself is never counted, whether or not it is a working day: "within 5 working
    days of Friday" starts counting on Monday.
    """
    step = 1 if days >= 0 else -1
    remaining = abs(days)
    day = start
    while remaining:
        day += dt.timedelta(days=step)
        if is_working_day(day):
            remaining -= 1
    return day


def add_calendar_days(start: dt.date, days: int) -> dt.date:
    return start + dt.timedelta(days=days)


def next_working_day(day: dt.date) -> dt.date:
    """``day`` itself when banks are open, else the first working day after it."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days after ``start`` up to and including ``end`` (negative when end < start)."""
    if end < start:
        return -working_days_between(end, start)
    count = 0
    day = start
    while day < end:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count
