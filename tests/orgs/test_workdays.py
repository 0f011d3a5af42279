"""TEN-6: working days are days Slovenian banks are open; calendar days otherwise."""

from __future__ import annotations

import datetime as dt

import pytest

from carely.lib.workdays import (
    add_calendar_days,
    add_working_days,
    holiday_name,
    is_working_day,
    next_working_day,
    working_days_between,
)

D = dt.date
pytestmark = pytest.mark.obligation("TEN-6")


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 4, 3), True),  # Good Friday is not a holiday in Slovenia
        (D(2026, 4, 6), False),  # Easter Monday
        (D(2026, 4, 27), False),  # Day of Uprising Against Occupation (Monday)
        (D(2026, 6, 25), False),  # Statehood Day (Thursday)
        (D(2026, 12, 24), True),  # Christmas Eve is a working day
        (D(2026, 12, 25), False),  # Christmas (Friday)
        (D(2026, 1, 2), False),  # 2 January (Friday)
        (D(2026, 2, 9), True),  # Monday after Prešeren Day on Sunday: no substitute day
        (D(2023, 8, 14), False),  # one-off Day of Solidarity after the 2023 floods
        (D(2026, 11, 28), False),  # Saturday
        (D(2026, 11, 25), True),  # ordinary Wednesday
    ],
)
def test_is_working_day(day, working):
    assert is_working_day(day) is working


def test_holiday_name_is_known():
    assert holiday_name(D(2026, 4, 6)) == "Easter Monday"
    assert holiday_name(D(2026, 4, 7)) is None


def test_add_working_days_skips_easter_monday():
    # Fri 3 Apr 2026 + 1: Sat, Sun, Easter Monday skipped -> Tue 7 Apr.
    assert add_working_days(D(2026, 4, 3), 1) == D(2026, 4, 7)


def test_add_working_days_over_christmas_and_new_year():
    # Thu 24 Dec 2026 + 1: 25 Fri holiday, 26 Sat (also a holiday), 27 Sun -> Mon 28 Dec.
    assert add_working_days(D(2026, 12, 24), 1) == D(2026, 12, 28)
    # Thu 31 Dec 2026 + 1: 1 Jan Fri holiday, 2 Jan Sat, 3 Jan Sun -> Mon 4 Jan 2027.
    assert add_working_days(D(2026, 12, 31), 1) == D(2027, 1, 4)


def test_add_working_days_from_a_weekend_does_not_count_the_start():
    # Sat 28 Nov 2026 + 5: Mon 30 Nov, Tue 1, Wed 2, Thu 3, Fri 4 Dec.
    assert add_working_days(D(2026, 11, 28), 5) == D(2026, 12, 4)


def test_add_working_days_backwards_and_zero():
    assert add_working_days(D(2026, 4, 7), -1) == D(2026, 4, 3)
    assert add_working_days(D(2026, 4, 6), 0) == D(2026, 4, 6)


def test_working_days_between_around_may_day():
    # Thu 30 Apr -> Fri 8 May 2026: 1 May Fri holiday, 2-3 weekend, then 4..8 May = 5.
    assert working_days_between(D(2026, 4, 30), D(2026, 5, 8)) == 5
    assert working_days_between(D(2026, 5, 8), D(2026, 4, 30)) == -5
    assert working_days_between(D(2026, 5, 8), D(2026, 5, 8)) == 0


def test_next_working_day():
    assert next_working_day(D(2026, 4, 4)) == D(2026, 4, 7)  # Sat -> past Easter Monday
    assert next_working_day(D(2026, 4, 7)) == D(2026, 4, 7)


def test_calendar_days_ignore_holidays():
    assert add_calendar_days(D(2026, 12, 24), 1) == D(2026, 12, 25)
    assert add_calendar_days(D(2026, 1, 31), 30) == D(2026, 3, 2)
