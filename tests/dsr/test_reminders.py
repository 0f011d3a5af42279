"""The daily reminder (DSR-4): each DPO of a queue gets one e-mail listing that queue's open
requests due within 7 days or overdue, and no others; no names or addresses in it; each listed
request gets a ``reminded`` step, at most once a day."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from carely.orgs.roles import Role
from dsr.models import State, StepKind
from dsr.tasks import dsr_reminders_send
from tests.dsr.factories import make_request
from tests.factories import MembershipFactory, UserFactory

TODAY = dt.date(2026, 11, 25)
NOON = dt.datetime(2026, 11, 25, 11, 0, tzinfo=dt.UTC)


def _received(org, days_ago: int, **fields):
    return make_request(
        org,
        received_at=NOON - dt.timedelta(days=days_ago),
        state=fields.pop("state", State.RECEIVED),
        subject_name="Ana Novak",
        subject_email="ana@example.test",
        **fields,
    )


@pytest.fixture
def queue_a(org_a):
    """Clinic A's queue on 25.11.2026, one request per case."""
    return {
        "overdue": _received(org_a, 40, type="erasure"),  # due 16.11.
        "due_today": _received(org_a, 31),  # received 25.10.: due 25.11.
        "in_7_days": _received(org_a, 24),  # received 1.11.: due 1.12. (6 days left)
        "day_8": _received(org_a, 22),  # received 3.11.: due 3.12. (8 days left): not yet
        "closed_overdue": _received(org_a, 50, state=State.CLOSED),
        "forwarded": _received(org_a, 45, state=State.FORWARDED),
    }


@pytest.mark.obligation("DSR-4")
@time_machine.travel(NOON, tick=False)
def test_each_dpo_gets_one_mail_listing_due_and_overdue_requests(
    org_a, org_b, dpo_a, staff_a, admin_a, queue_a, mailoutbox
):
    second_dpo = MembershipFactory(organisation=org_a, role=Role.DPO).user
    second_dpo.preferred_language = "en"
    second_dpo.save(update_fields=["preferred_language"])
    dpo_a.preferred_language = "en"
    dpo_a.save(update_fields=["preferred_language"])
    other_clinic = _received(org_b, 40)  # org_b has no DPO: nobody to tell, nothing claimed

    counts = dsr_reminders_send()

    assert counts["requests"] == 3 and counts["emails"] == 2 and counts["without_dpo"] == 1
    assert sorted(m.to[0] for m in mailoutbox) == sorted([dpo_a.email, second_dpo.email])
    for mail in mailoutbox:
        body = mail.body
        listed = [
            key for key, r in queue_a.items() if r.reference in body or r.reference in mail.subject
        ]
        assert listed == ["overdue", "due_today", "in_7_days"], mail.to
        assert other_clinic.reference not in body
        # Soonest due first, each with its type, due date and days left.
        assert body.index(queue_a["overdue"].reference) < body.index(queue_a["due_today"].reference)
        assert "16.11.2026" in body and "overdue by 9 days" in body
        assert "due today" in body and "01.12.2026" in body and "6 days left" in body
        assert "Erasure" in body
        assert "Ana" not in body and "ana@example.test" not in body
        assert "3 data-subject requests" in mail.subject
        assert "/dsr/" in body
    for key in ("overdue", "due_today", "in_7_days"):
        request = queue_a[key]
        request.refresh_from_db()
        assert request.last_reminded_on == TODAY
        assert request.steps.filter(kind=StepKind.REMINDED).count() == 1
    for key in ("day_8", "closed_overdue", "forwarded"):
        assert not queue_a[key].steps.filter(kind=StepKind.REMINDED).exists()
    other_clinic.refresh_from_db()
    assert other_clinic.last_reminded_on is None


@pytest.mark.obligation("DSR-4")
@time_machine.travel(NOON, tick=False)
def test_a_second_run_the_same_day_sends_nothing_the_next_day_again(
    org_a, dpo_a, queue_a, mailoutbox
):
    dsr_reminders_send()
    assert len(mailoutbox) == 1
    again = dsr_reminders_send()
    assert again["requests"] == 0 and again["emails"] == 0
    assert len(mailoutbox) == 1
    assert queue_a["overdue"].steps.filter(kind=StepKind.REMINDED).count() == 1
    # A request that became due-soon later the same day is still reminded, alone.
    late = _received(org_a, 26)
    dsr_reminders_send()
    assert len(mailoutbox) == 2
    assert late.reference in mailoutbox[1].body
    assert queue_a["overdue"].reference not in mailoutbox[1].body
    # The next day, everything still open and due is listed again.
    tomorrow = dsr_reminders_send(today=(TODAY + dt.timedelta(days=1)).isoformat())
    assert tomorrow["requests"] == 5  # day_8 is now within 7 days
    assert queue_a["overdue"].steps.filter(kind=StepKind.REMINDED).count() == 2


@pytest.mark.obligation("DSR-4", "DSR-2")
@time_machine.travel(NOON, tick=False)
def test_the_platform_queue_reminds_the_platform_dpos_in_slovenian(
    org_a, platform_dpo, operator, mailoutbox
):
    platform_dpo.preferred_language = "sl"
    platform_dpo.save(update_fields=["preferred_language"])
    UserFactory(platform_role="platform_dpo", is_active=False)
    request = _received(None, 30, subject_kind="visitor")
    counts = dsr_reminders_send()
    assert counts["emails"] == 1 and [m.to for m in mailoutbox] == [[platform_dpo.email]]
    assert request.reference in mailoutbox[0].body and "/dsr/platform/" in mailoutbox[0].body
    # Slovenian for a DPO who chose it.
    assert "Dostop" in mailoutbox[0].body
