"""Background work for data-subject requests.

``dsr_reminders_send``: once a day, each DPO hears of their queue's requests that are due within
7 days or overdue (DSR-4): one e-mail per DPO per queue listing reference, type, due date and
days left, never a name or an address. Each listed request gets a ``reminded`` step and its
``last_reminded_on`` day, so a second run on the same day sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation

from carely.audit.context import Actor, acting_as
from carely.orgs.models import Membership, User
from carely.orgs.roles import PlatformRole, Role
from dsr import deadlines
from dsr.forms import TYPE_LABELS
from dsr.models import OPEN_STATES, DataSubjectRequest, StepKind
from dsr.steps import dsr_step_add

logger = logging.getLogger(__name__)

JOB = "dsr_reminders_send"


def _recipients(organisation_id: int | None) -> list[User]:
    """The queue's DPOs: the clinic's members with the DPO role, or the platform DPOs."""
    if organisation_id is None:
        users = User.objects.filter(platform_role=PlatformRole.PLATFORM_DPO, is_active=True)
    else:
        ids = Membership.objects.filter(organisation_id=organisation_id, role=Role.DPO).values_list(
            "user_id", flat=True
        )
        users = User.objects.filter(pk__in=ids, is_active=True)
    return list(users.exclude(email="").order_by("pk"))


def _queue_url(platform: bool) -> str:
    try:
        path = reverse("dsr:platform_queue" if platform else "dsr:queue")
    except NoReverseMatch:  # the pages are not mounted (a test settings module)
        path = "/dsr/platform/" if platform else "/dsr/"
    return str(settings.CARELY_PUBLIC_BASE_URL).rstrip("/") + path


def _mail(user: User, rows: list[dict[str, Any]], *, platform: bool, today: dt.date) -> None:
    language = user.preferred_language if user.preferred_language in ("sl", "en") else "sl"
    with translation.override(language):
        listed = [
            {**row, "type_label": str(TYPE_LABELS.get(row["type"], row["type"]))} for row in rows
        ]
        overdue = sum(1 for row in rows if row["days_left"] < 0)
        context = {
            "rows": listed,
            "overdue": overdue,
            "due_soon": len(rows) - overdue,
            "within_days": deadlines.REMIND_WITHIN_DAYS,
            "url": _queue_url(platform),
            "platform": platform,
            "today": today,
        }
        body = render_to_string("dsr/reminder_email.txt", context).strip() + "\n"
        subject, _sep, text = body.partition("\n")
        EmailMessage(
            subject=subject.strip(),
            body=text.lstrip("\n"),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[user.email],
        ).send()


def _remind_queue(organisation_id: int | None, ids: list[int], today: dt.date) -> dict[str, int]:
    """One queue: claim its requests not yet reminded today (row locks, in id order), mail each
    DPO, record the steps. The mail goes inside the transaction: a mail server that refuses
    leaves the requests unclaimed for the next run rather than marked as reminded."""
    recipients = _recipients(organisation_id)
    if not recipients:
        logger.warning("dsr reminders: queue %s has requests due but no DPO", organisation_id)
        return {"requests": 0, "emails": 0, "without_dpo": 1}
    with transaction.atomic():
        claimed = list(
            DataSubjectRequest.objects.select_for_update()
            .filter(pk__in=ids, state__in=OPEN_STATES)
            .filter(Q(last_reminded_on__isnull=True) | Q(last_reminded_on__lt=today))
            .order_by("pk")
        )
        if not claimed:
            return {"requests": 0, "emails": 0, "without_dpo": 0}
        claimed.sort(key=lambda r: (r.due_on, r.pk))
        rows = [
            {
                "reference": r.reference,
                "type": r.type,
                "due_on": r.due_on,
                "days_left": deadlines.days_left(r.due_on, today),
                "overdue_days": -deadlines.days_left(r.due_on, today),
            }
            for r in claimed
        ]
        for user in recipients:
            _mail(user, rows, platform=organisation_id is None, today=today)
        DataSubjectRequest.objects.filter(pk__in=[r.pk for r in claimed]).update(
            last_reminded_on=today, updated_at=timezone.now()
        )
        for r in claimed:
            dsr_step_add(
                r,
                StepKind.REMINDED,
                data={
                    "due_on": r.due_on.isoformat(),
                    "days_left": deadlines.days_left(r.due_on, today),
                    "dpos": len(recipients),
                },
            )
    return {"requests": len(claimed), "emails": len(recipients), "without_dpo": 0}


def dsr_reminders_run(*, today: dt.date | None = None) -> dict[str, int]:
    """Remind every queue's DPOs of open requests due within 7 days or overdue (DSR-4)."""
    today = today or timezone.localdate()
    horizon = today + dt.timedelta(days=deadlines.REMIND_WITHIN_DAYS)
    due = (
        DataSubjectRequest.objects.filter(state__in=OPEN_STATES, due_on__lte=horizon)
        .filter(Q(last_reminded_on__isnull=True) | Q(last_reminded_on__lt=today))
        .values_list("organisation_id", "pk")
    )
    queues: dict[int | None, list[int]] = defaultdict(list)
    for queue_id, pk in due:
        queues[queue_id].append(pk)
    totals = {"queues": 0, "requests": 0, "emails": 0, "without_dpo": 0, "failed": 0}
    with acting_as(Actor.system(JOB)):
        for organisation_id, ids in queues.items():
            try:
                counts = _remind_queue(organisation_id, ids, today)
            except Exception:  # the mail backend's errors vary; other queues still get theirs
                logger.exception("dsr reminders: queue %s failed", organisation_id)
                totals["failed"] += 1
                continue
            totals["queues"] += 1 if counts["requests"] else 0
            for key in ("requests", "emails", "without_dpo"):
                totals[key] += counts[key]
    return totals


@shared_task(name="dsr.tasks.dsr_reminders_send", ignore_result=True)
def dsr_reminders_send(today: str | dt.date | None = None) -> dict[str, int]:
    """Daily on beat. Not retried: a queue whose mail failed is left unclaimed and the next run
    (or a manual one) reminds it; a run is safe to repeat the same day."""
    if isinstance(today, str):
        today = dt.date.fromisoformat(today)
    return dsr_reminders_run(today=today)
