"""TEN-2: one-year terms from activation, automatic renewal, 45 days' notice.

Every expected date below was counted by hand on a calendar; the comment beside it shows the count.
"""

from __future__ import annotations

import datetime as dt

import pytest

from carely.orgs.contracts import (
    anniversary,
    end_after_notice,
    last_notice_day,
    term_containing,
)
from carely.orgs.models import Contract

D = dt.date
pytestmark = pytest.mark.obligation("TEN-2")


def test_first_term_is_one_year_from_activation():
    assert term_containing(D(2025, 3, 10), D(2025, 3, 10)) == (D(2025, 3, 10), D(2026, 3, 9))
    assert term_containing(D(2025, 3, 10), D(2026, 3, 9)) == (D(2025, 3, 10), D(2026, 3, 9))


def test_renewal_terms_follow_without_gap():
    # The day after the first term's last day opens the second term.
    assert term_containing(D(2025, 3, 10), D(2026, 3, 10)) == (D(2026, 3, 10), D(2027, 3, 9))
    assert term_containing(D(2025, 3, 10), D(2031, 1, 1)) == (D(2030, 3, 10), D(2031, 3, 9))


def test_last_notice_day_is_45_days_before_term_end():
    # 2026-01-23 -> 2026-03-09: Jan 24..31 (8) + Feb (28) + Mar 1..9 (9) = 45 days.
    assert last_notice_day(D(2026, 3, 9)) == D(2026, 1, 23)


def test_last_notice_day_across_a_leap_february():
    # Term end 2024-04-14: Mar 1..31 (31) + Apr 1..14 (14) = 45, so 29 Feb 2024 is the last day.
    assert last_notice_day(D(2024, 4, 14)) == D(2024, 2, 29)
    # The same term a year earlier has no 29 February: 28 Feb 2023.
    assert last_notice_day(D(2023, 4, 14)) == D(2023, 2, 28)


def test_notice_on_the_last_day_ends_the_current_term():
    assert end_after_notice(D(2025, 3, 10), D(2026, 1, 23)) == D(2026, 3, 9)


def test_notice_one_day_late_runs_one_more_term():
    assert end_after_notice(D(2025, 3, 10), D(2026, 1, 24)) == D(2027, 3, 9)


def test_notice_in_a_renewed_term_ends_that_term():
    # Third term: 2027-03-10 .. 2028-03-09; notice in autumn 2027 is in time.
    assert end_after_notice(D(2025, 3, 10), D(2027, 10, 1)) == D(2028, 3, 9)


def test_notice_before_activation_ends_the_first_term():
    assert end_after_notice(D(2025, 3, 10), D(2025, 1, 5)) == D(2026, 3, 9)


def test_activation_on_29_february_falls_back_to_28th_and_returns_in_leap_years():
    start = D(2024, 2, 29)
    assert anniversary(start, 1) == D(2025, 2, 28)
    assert anniversary(start, 4) == D(2028, 2, 29)
    # Terms: 2024-02-29..2025-02-27, 2025-02-28..2026-02-27, ... 2027-02-28..2028-02-28.
    assert term_containing(start, D(2025, 2, 27)) == (D(2024, 2, 29), D(2025, 2, 27))
    assert term_containing(start, D(2025, 2, 28)) == (D(2025, 2, 28), D(2026, 2, 27))
    assert term_containing(start, D(2028, 2, 28)) == (D(2027, 2, 28), D(2028, 2, 28))
    assert term_containing(start, D(2028, 2, 29)) == (D(2028, 2, 29), D(2029, 2, 27))
    # 2028-01-14 -> 2028-02-28: Jan 15..31 (17) + Feb 1..28 (28) = 45.
    assert last_notice_day(D(2028, 2, 28)) == D(2028, 1, 14)
    assert end_after_notice(start, D(2028, 1, 14)) == D(2028, 2, 28)
    assert end_after_notice(start, D(2028, 1, 15)) == D(2029, 2, 27)


def test_term_spanning_a_leap_day_is_366_days():
    start, last = term_containing(D(2023, 6, 1), D(2024, 1, 1))
    assert (start, last) == (D(2023, 6, 1), D(2024, 5, 31))
    assert (last - start).days + 1 == 366


@pytest.mark.django_db
def test_contract_model_answers_term_end_and_notice_dates(org_a):
    contract = Contract.objects.create(organisation=org_a, activation_date=D(2025, 3, 10))
    assert contract.current_term_end(D(2026, 11, 25)) == D(2027, 3, 9)
    # 2027-03-09 minus 45 days: Mar 9 -> Feb 28 is 9, Feb has 28 (-> Jan 31), 8 more -> Jan 23.
    assert contract.last_notice_day(D(2026, 11, 25)) == D(2027, 1, 23)
    assert contract.ends_on() is None  # renews until someone gives notice
    contract.non_renewal_notice_on = D(2027, 1, 30)  # late for the 2027 end
    assert contract.ends_on() == D(2028, 3, 9)
