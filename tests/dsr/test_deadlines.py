"""DSR-4 and DSR-13: due dates across month ends and leap years, extensions only in the first
month, complaints due in 5 Slovenian working days (TEN-6). Expected dates are worked out by hand."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from dsr import deadlines
from dsr.models import State
from dsr.services import DsrConflict, dsr_complaint_open, dsr_extend_deadline, dsr_receive
from tests.dsr.factories import make_request

LJ = ZoneInfo("Europe/Ljubljana")
D = dt.date


@pytest.mark.obligation("DSR-4")
@pytest.mark.parametrize(
    ("received", "due"),
    [
        (D(2026, 1, 15), D(2026, 2, 15)),
        (D(2026, 1, 31), D(2026, 2, 28)),  # no 31 February: the month's last day
        (D(2028, 1, 31), D(2028, 2, 29)),  # leap year
        (D(2028, 1, 30), D(2028, 2, 29)),
        (D(2026, 3, 31), D(2026, 4, 30)),
        (D(2026, 12, 20), D(2027, 1, 20)),  # over the year end
        (D(2028, 2, 29), D(2028, 3, 29)),
    ],
)
def test_due_one_calendar_month_after_receipt(received, due):
    assert deadlines.due_on(received) == due


@pytest.mark.obligation("DSR-4")
def test_extension_adds_two_further_months_with_the_same_month_end_rule():
    assert deadlines.extended_due_on(D(2026, 11, 30)) == D(2027, 2, 28)
    assert deadlines.extended_due_on(D(2027, 11, 30)) == D(2028, 2, 29)


@pytest.mark.obligation("DSR-4")
def test_receipt_day_is_the_local_day_in_ljubljana(org_a, ana):
    # 23:30 UTC on 31 January is 00:30 on 1 February in Ljubljana.
    received = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.UTC)
    with _frozen(dt.datetime(2026, 2, 2, 9, 0, tzinfo=LJ)):
        request = dsr_receive(
            organisation=org_a,
            type="access",
            channel="email",
            subject={"email": "ana@example.test"},
            received_at=received,
        )
    assert request.clock_started_on == D(2026, 2, 1)
    assert request.due_on == D(2026, 3, 1)


class _frozen:
    """time_machine without the fixture, usable as a context manager in parametrised tests."""

    def __init__(self, moment: dt.datetime) -> None:
        import time_machine

        self._travel = time_machine.travel(moment, tick=False)

    def __enter__(self) -> None:
        self._travel.start()

    def __exit__(self, *exc: object) -> None:
        self._travel.stop()


@pytest.mark.obligation("DSR-4")
def test_extension_within_the_first_month_tells_the_subject_with_reasons(org_a, ana, mailoutbox):
    received = dt.datetime(2026, 1, 31, 10, 0, tzinfo=LJ)
    request = make_request(org_a, ana, received_at=received)
    assert request.due_on == D(2026, 2, 28)
    with _frozen(dt.datetime(2026, 2, 28, 16, 0, tzinfo=LJ)):  # the first month's last day
        dsr_extend_deadline(request, reason="Many years of records across three systems.")
    request.refresh_from_db()
    assert request.due_on == D(2026, 4, 30)
    assert request.extension_reason.startswith("Many years")
    notice = request.notices.get(kind="extension")
    assert notice.status in ("queued", "sent")
    assert request.steps.filter(kind="extended").exists()


@pytest.mark.obligation("DSR-4")
def test_extension_after_the_first_month_is_refused(org_a, ana):
    received = dt.datetime(2026, 1, 31, 10, 0, tzinfo=LJ)
    request = make_request(org_a, ana, received_at=received)
    with (
        _frozen(dt.datetime(2026, 3, 1, 8, 0, tzinfo=LJ)),
        pytest.raises(DsrConflict, match=r"within the first month, by 28\.02\.2026"),
    ):
        dsr_extend_deadline(request, reason="Many years of records across three systems.")
    request.refresh_from_db()
    assert request.extended_at is None
    assert request.due_on == D(2026, 2, 28)
    assert not request.notices.filter(kind="extension").exists()


@pytest.mark.obligation("DSR-4")
def test_a_second_extension_is_refused(org_a, ana):
    request = make_request(org_a, ana)
    dsr_extend_deadline(request, reason="Records in three systems need merging.")
    with pytest.raises(DsrConflict, match="already extended"):
        dsr_extend_deadline(request, reason="Still more records to go through.")


@pytest.mark.obligation("DSR-13")
@pytest.mark.obligation("TEN-6")
def test_complaint_is_due_in_five_working_days_across_a_slovenian_holiday(org_a, ana):
    # Decided Wednesday 22 April 2026; complaint lodged Thursday 23 April. Counting working days:
    # Fri 24, (Sat 25, Sun 26), Mon 27 is Day of Uprising Against Occupation (holiday), Tue 28,
    # Wed 29, Thu 30, (Fri 1 and Sat 2 May are Labour Day holidays), Mon 4 May: the fifth.
    request = make_request(
        org_a,
        ana,
        state=State.EXECUTED,
        decided_at=dt.datetime(2026, 4, 22, 12, 0, tzinfo=LJ),
    )
    complaint = dsr_complaint_open(
        request,
        details="The response left out my appointment reminders.",
        received_at=dt.datetime(2026, 4, 23, 9, 0, tzinfo=LJ),
    )
    assert complaint.complaint_of == request
    assert complaint.due_on == D(2026, 5, 4)
    assert request.steps.filter(kind="complaint_opened").exists()


@pytest.mark.obligation("DSR-13")
def test_complaint_after_fifteen_days_is_refused(org_a, ana):
    request = make_request(
        org_a, ana, state=State.EXECUTED, decided_at=dt.datetime(2026, 4, 1, 12, 0, tzinfo=LJ)
    )
    with pytest.raises(DsrConflict, match=r"15 days for a complaint ended on 16\.04\.2026"):
        dsr_complaint_open(
            request,
            details="The response left out my appointment reminders.",
            received_at=dt.datetime(2026, 4, 17, 9, 0, tzinfo=LJ),
        )
