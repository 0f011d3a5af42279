"""Deadlines of data-subject requests (DSR-4, DSR-13; ADR 0013).

- A decision is due one calendar month after the clock starts: the same day number in the next
  month, or that month's last day when it has no such day (31 January: 28 or 29 February). The
  clock starts on the day of receipt, or again on the day identity information asked for under
  DSR-3 arrives.
- An extension adds two further months (three months from the clock's start, same end-of-month
  rule) and is allowed only until the first month's due day, since the subject must be told
  within the first month.
- A complaint about an access decision may be lodged within 15 days after the decision and is
  due 5 Slovenian working days after it arrives (TEN-6, ``carely.lib.workdays``).

We never move a due day later to the next working day: answering a day early is always lawful,
answering a day late is not, so the queue shows the earlier, safe day.
"""

from __future__ import annotations

import calendar
import datetime as dt

from django.utils import timezone

from carely.lib.workdays import add_working_days

EXTENSION_MONTHS = 2
COMPLAINT_WINDOW_DAYS = 15
COMPLAINT_WORKING_DAYS = 5
REMIND_WITHIN_DAYS = 7


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole calendar months, clamped to the last day of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day.day, last))


def local_day(moment: dt.datetime) -> dt.date:
    """The Europe/Ljubljana calendar day of an instant (a request at 00:30 local time on the 1st
    was received on the 1st, although it is still the 31st in UTC)."""
    return timezone.localtime(moment).date()


def due_on(clock_started_on: dt.date) -> dt.date:
    return add_months(clock_started_on, 1)


def extended_due_on(clock_started_on: dt.date) -> dt.date:
    return add_months(clock_started_on, 1 + EXTENSION_MONTHS)


def extension_allowed(clock_started_on: dt.date, today: dt.date) -> bool:
    """An extension must reach the subject within the first month (Art. 12(3))."""
    return today <= due_on(clock_started_on)


def complaint_deadline(decided_on: dt.date) -> dt.date:
    """The last day a complaint about an access decision may be lodged (DSR-13)."""
    return decided_on + dt.timedelta(days=COMPLAINT_WINDOW_DAYS)


def complaint_due_on(received_on: dt.date) -> dt.date:
    return add_working_days(received_on, COMPLAINT_WORKING_DAYS)


def days_left(due: dt.date, today: dt.date) -> int:
    """Negative when overdue."""
    return (due - today).days
