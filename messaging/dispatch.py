"""Dispatch: claim due rows, decide again, hand them to the provider, record (MSG-5, MSG-9).

One round (``dispatch_batch``):

1. **Claim** up to ``MESSAGING_CLAIM_BATCH`` due rows (transactional first) by moving them to
   ``sending`` with a lease, in one statement: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
   workers take disjoint rows without waiting; on SQLite the conditional UPDATE is safe because
   SQLite runs one writer at a time.
2. **Decide again** with ``sending_decide`` (``eligibility_decide`` plus hard-bounced
   addresses) for the whole batch (a few queries per organisation, kind, channel and purpose):
   refused rows end as ``refused`` with every reason, never sent. A WhatsApp free text
   outside the 24-hour window is refused too.
3. **Quiet hours**: a row that respects them (marketing always) and falls inside them is
   ``deferred`` to the end of the window in the organisation's time zone.
4. **Frequency cap** (MSG-4, ``messaging.frequency_cap``): a marketing row that would take its
   contact over the organisation's cap ends ``refused`` with ``frequency_cap``. After quiet
   hours, so only rows handed over now are counted, and a deferred row is judged when it goes.
5. **Hand over** per provider request: ``handed_at`` is committed *before* the call, so a row
   found in ``sending`` without it never reached the provider; then the call (after the shared
   rate limit), then the provider's ids and ``sent`` in one write.

Failures: a 429/5xx/connect failure puts the request's rows back as ``deferred`` with
exponential backoff and jitter (the provider's Retry-After wins, and blocks the account for
every worker); a permanent error ends them as ``failed`` with the provider's code; an answer
that may have been lost (read timeout) leaves them in ``sending`` for the reconciler, which asks
the provider before anything is sent again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from carely.orgs.models import Organisation
from consent.eligibility import EligibilityQueryError, Reason
from messaging.frequency_cap import marketing_caps, marketing_handed_counts
from messaging.models import (
    WAITING,
    Channel,
    EventSource,
    Kind,
    Message,
    MessageEvent,
    ProviderAccount,
    Status,
)
from messaging.providers import provider_for
from messaging.providers.base import OutgoingMessage, ProviderConfig, ProviderError, SendResult
from messaging.ratelimit import limiter
from messaging.services import (
    RefusalReason,
    needs_session,
    sending_decide,
    whatsapp_session_open,
)

logger = logging.getLogger("carely.messaging")

# A limiter wait up to this long is slept through; a longer one defers the rows instead of
# holding a worker.
_MAX_INLINE_WAIT = 2.0
UNKNOWN_PURPOSE = "unknown_purpose"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- claiming ------------------------------------------------------------------------------------
def _claim_sql(vendor: str) -> str:
    """The claim statement; its parameters are, in order: kind, due, limit, owner, lease.

    On PostgreSQL the candidate rows are picked in a MATERIALIZED CTE and joined: with the
    picking subquery inside ``WHERE id IN (...)`` the planner may run it again for every outer
    row (a nested loop), and each run skips the rows the last one locked, so one claim took far
    more than its limit and its time grew with the square of the backlog (seen: 8,800 rows
    claimed in 15 s for a limit of 1,000, by the campaign bench)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    waiting = ", ".join(f"'{s}'" for s in WAITING)
    if vendor == "postgresql":
        return (
            f"WITH picked AS MATERIALIZED (SELECT id FROM {table} "  # noqa: S608
            f"WHERE status IN ({waiting}) AND kind = %s AND due_at <= %s "
            "ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {table} AS m SET status = 'sending', lease_owner = %s, lease_until = %s "
            "FROM picked WHERE m.id = picked.id RETURNING m.id"
        )
    # SQLite runs one writer at a time: the conditional UPDATE is enough.
    return (
        f"UPDATE {table} SET status = 'sending', lease_owner = %s, lease_until = %s "  # noqa: S608
        f"WHERE id IN (SELECT id FROM {table} WHERE status IN ({waiting}) AND kind = %s "
        f"AND due_at <= %s ORDER BY due_at LIMIT %s) AND status IN ({waiting}) "
        "RETURNING id"
    )


def kinds_for(queue: str) -> list[str]:
    """The transactional queue takes only transactional rows; the bulk queue takes them first
    too, so a reminder never waits behind a campaign even on a single worker."""
    if queue == settings.MESSAGING_TRANSACTIONAL_QUEUE:
        return [Kind.TRANSACTIONAL]
    return [Kind.TRANSACTIONAL, Kind.MARKETING]


def claim(*, kinds: Sequence[str], limit: int, owner: str, now: dt.datetime) -> list[int]:
    ops = connection.ops
    lease_until = now + dt.timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    lease = ops.adapt_datetimefield_value(lease_until)
    due = ops.adapt_datetimefield_value(now)
    sql = _claim_sql(connection.vendor)
    ids: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for kind in kinds:
            if len(ids) >= limit:
                break
            picking: list[Any] = [kind, due, limit - len(ids)]
            setting: list[Any] = [owner, lease]
            params = picking + setting if connection.vendor == "postgresql" else setting + picking
            cursor.execute(sql, params)
            ids.extend(row[0] for row in cursor.fetchall())
    return ids


# --- one batch -----------------------------------------------------------------------------------
@dataclass
class Row:
    id: int
    organisation_id: int
    contact_id: int | None
    channel: str
    kind: str
    purpose: str
    to: str
    subject: str
    body: str
    html_body: str
    extras: dict[str, Any]
    our_id: str
    respect_quiet_hours: bool
    attempts: int
    due_at: dt.datetime
    campaign_id: int | None


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    refused: int = 0
    deferred: int = 0
    failed: int = 0
    rejected: int = 0
    retried: int = 0
    uncertain: int = 0
    requests: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


_ROW_FIELDS = (
    "id",
    "organisation_id",
    "contact_id",
    "channel",
    "kind",
    "purpose",
    "to_address",
    "subject",
    "body",
    "html_body",
    "extras",
    "our_id",
    "respect_quiet_hours",
    "attempts",
    "due_at",
    "campaign_id",
)


def _load(ids: Sequence[int]) -> list[Row]:
    rows = []
    for values in Message.objects.filter(pk__in=ids).order_by("pk").values_list(*_ROW_FIELDS):
        (pk, org, contact, channel, kind, purpose, to, subject, body, html, extras, *rest) = values
        rows.append(
            Row(
                pk,
                org,
                contact,
                channel,
                kind,
                purpose,
                to,
                subject,
                body,
                html,
                json.loads(extras) if extras else {},
                *rest,
            )
        )
    return rows


def dispatch_batch(
    *, queue: str, owner: str | None = None, now: dt.datetime | None = None
) -> BatchReport:
    """Claim and handle one batch of due messages for ``queue``; see the module docstring."""
    owner = owner or worker_id()
    now = now or timezone.now()
    report = BatchReport()
    ids = claim(kinds=kinds_for(queue), limit=settings.MESSAGING_CLAIM_BATCH, owner=owner, now=now)
    report.claimed = len(ids)
    if not ids:
        return report
    rows = _load(ids)
    organisations = Organisation.objects.in_bulk({r.organisation_id for r in rows})
    accounts = {
        a.organisation_id: a
        for a in ProviderAccount.objects.filter(organisation_id__in=list(organisations))
    }
    sendable = _campaign_halts(rows, now, report)
    sendable = _decide(sendable, organisations, now, report)
    sendable = _quiet_hours(sendable, organisations, accounts, now, report)
    sendable = _frequency_cap(sendable, now, report)
    groups: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for row in sendable:
        groups[(row.organisation_id, row.channel)].append(row)
    for (organisation_id, channel), group in groups.items():
        config = provider_config(channel, accounts.get(organisation_id))
        _hand_over(group, channel, config, owner, report)
    return report


def _halted_campaigns(campaign_ids: set[int]) -> dict[int, str]:
    """The campaigns among ``campaign_ids`` that are paused or cancelled, with their state.
    Imported late: campaigns build on messaging, not the other way round."""
    if not campaign_ids:
        return {}
    from campaigns.models import Campaign, State

    return dict(
        Campaign.objects.filter(
            pk__in=list(campaign_ids), state__in=[State.PAUSED, State.CANCELLED]
        ).values_list("pk", "state")
    )


def _campaign_halts(rows: list[Row], now: dt.datetime, report: BatchReport) -> list[Row]:
    """A row of a paused campaign goes back to ``held``; one of a cancelled campaign ends
    ``cancelled``. Pause and cancel move the waiting rows themselves; these are the rows a
    worker had already claimed when the campaign stopped."""
    halted = _halted_campaigns({r.campaign_id for r in rows if r.campaign_id is not None})
    if not halted:
        return rows
    stopped = [r for r in rows if r.campaign_id in halted]
    _halt(stopped, halted, now)
    report.by_status["campaign_halted"] = report.by_status.get("campaign_halted", 0) + len(stopped)
    return [r for r in rows if r.campaign_id not in halted]


def _halt(rows: list[Row], halted: dict[int, str], now: dt.datetime) -> None:
    held = [r for r in rows if halted[r.campaign_id or 0] == "paused"]
    cancelled = [r for r in rows if halted[r.campaign_id or 0] != "paused"]
    with transaction.atomic():
        if held:
            Message.objects.filter(
                pk__in=[r.id for r in held], status=Status.SENDING, handed_at__isnull=True
            ).update(status=Status.HELD, lease_until=None, lease_owner="")
            _events([(r.id, Status.HELD, {"reason": "campaign_paused"}, None) for r in held], now)
        if cancelled:
            Message.objects.filter(
                pk__in=[r.id for r in cancelled], status=Status.SENDING, handed_at__isnull=True
            ).update(
                status=Status.CANCELLED,
                final_at=now,
                lease_until=None,
                lease_owner="",
                last_error="campaign_cancelled",
            )
            _events(
                [
                    (r.id, Status.CANCELLED, {"reason": "campaign_cancelled"}, None)
                    for r in cancelled
                ],
                now,
            )


def _decide(
    rows: list[Row], organisations: dict[int, Organisation], now: dt.datetime, report: BatchReport
) -> list[Row]:
    """MSG-5: the eligibility decision again, at dispatch time, for the whole batch."""
    refused: dict[int, list[str]] = {}
    groups: dict[tuple[int, str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row.contact_id is None:  # the contact was erased after the message was queued
            refused[row.id] = [Reason.ERASED]
        else:
            groups[(row.organisation_id, row.kind, row.channel, row.purpose)].append(row)
    for (organisation_id, kind, channel, purpose), group in groups.items():
        organisation = organisations[organisation_id]
        contact_ids = [r.contact_id for r in group if r.contact_id is not None]
        try:
            decisions = sending_decide(
                organisation=organisation,
                contact_ids=contact_ids,
                kind=kind,
                channel=channel,
                purpose=purpose,
                now=now,
            )
        except EligibilityQueryError:
            # The purpose was deleted since enqueue: nothing can allow these messages.
            for r in group:
                refused[r.id] = [UNKNOWN_PURPOSE]
            continue
        sessions: set[int] = set()
        if channel == Channel.WHATSAPP:
            sessions = whatsapp_session_open(
                organisation=organisation, contact_ids=contact_ids, now=now
            )
        for r in group:
            assert r.contact_id is not None
            reasons = list(decisions[r.contact_id].reasons)
            if needs_session(r.channel, r.extras) and r.contact_id not in sessions:
                reasons.append(RefusalReason.WHATSAPP_SESSION_CLOSED)
            if reasons:
                refused[r.id] = reasons
    if refused:
        _end_refused(refused, now)
        report.refused += len(refused)
    return [r for r in rows if r.id not in refused]


def _end_refused(refused: dict[int, list[str]], now: dt.datetime) -> None:
    with transaction.atomic():
        by_reasons: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for pk, reasons in refused.items():
            by_reasons[tuple(reasons)].append(pk)
        for codes, pks in by_reasons.items():
            Message.objects.filter(pk__in=pks, status=Status.SENDING).update(
                status=Status.REFUSED,
                refusal_reasons=list(codes),
                final_at=now,
                lease_until=None,
                lease_owner="",
                last_error="not eligible at dispatch: " + ", ".join(codes),
            )
        _events(
            [(pk, Status.REFUSED, {"reasons": reasons}, None) for pk, reasons in refused.items()],
            now,
        )


def _frequency_cap(rows: list[Row], now: dt.datetime, report: BatchReport) -> list[Row]:
    """MSG-4: refuse the marketing rows that would take a contact over the organisation's cap.

    What reached the provider in the window (one query for the batch) plus the rows of this
    batch handed over before it, earliest due first: three rows for a contact one below the
    cap send one. A row counted here that then meets a 429 goes back to waiting and is judged
    again when it comes back; batch-mates refused on its account make the cap stricter only."""
    marketing = [r for r in rows if r.kind == Kind.MARKETING and r.contact_id is not None]
    if not marketing:
        return rows
    caps = marketing_caps({r.organisation_id for r in marketing})
    marketing = [r for r in marketing if caps[r.organisation_id].on]
    contacts: dict[int, set[int]] = defaultdict(set)
    for r in marketing:
        assert r.contact_id is not None
        contacts[r.organisation_id].add(r.contact_id)
    if not contacts:
        return rows
    counts = marketing_handed_counts(contacts, caps, now=now)
    refused: dict[int, list[str]] = {}
    for r in sorted(marketing, key=lambda r: (r.due_at, r.id)):
        key = (r.organisation_id, r.contact_id or 0)
        if counts.get(key, 0) >= caps[r.organisation_id].count:
            refused[r.id] = [RefusalReason.FREQUENCY_CAP]
        else:
            counts[key] = counts.get(key, 0) + 1
    if refused:
        _end_refused(refused, now)
        report.refused += len(refused)
    return [r for r in rows if r.id not in refused]


# --- quiet hours ---------------------------------------------------------------------------------
def quiet_hours_end(
    now: dt.datetime, zone: str, start: dt.time, end: dt.time
) -> dt.datetime | None:
    """When the quiet window around ``now`` ends (in UTC), or None when ``now`` is outside it.

    The window may cross midnight (20:00-08:00) or not (12:00-13:00); start == end means none.
    """
    if start == end:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    t = local.time()
    crosses = start > end
    inside = (t >= start or t < end) if crosses else (start <= t < end)
    if not inside:
        return None
    day = local.date()
    if crosses and t >= start:
        day += dt.timedelta(days=1)
    # In UTC: an aware time in the repeated autumn hour never compares equal to one in another
    # zone (PEP 495), which would surprise anyone grouping or comparing these.
    return _local_instant(dt.datetime.combine(day, end, tzinfo=tz), after=now).astimezone(dt.UTC)


def _local_instant(wall: dt.datetime, *, after: dt.datetime) -> dt.datetime:
    """The first real instant later than ``after`` at which the clocks of ``wall``'s zone show
    ``wall`` or later.

    A wall time in the spring gap (02:30 when clocks jump from 02:00 to 03:00) never happens:
    the answer is the jump itself (03:00 summer time). One in the repeated autumn hour happens
    twice: the first, unless that has passed (we are in the hour's second pass), then the
    second."""
    first = wall.replace(fold=0)
    if _shows(first) != wall.replace(tzinfo=None):
        # In the gap: fold=0 reads it with the offset before the jump (an instant after the
        # jump), fold=1 with the offset after it (an instant before). Bisect to the jump.
        low = int(wall.replace(fold=1).timestamp())
        high = int(first.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            seen = _shows(dt.datetime.fromtimestamp(middle, wall.tzinfo))
            if seen >= wall.replace(tzinfo=None):
                high = middle
            else:
                low = middle
        return dt.datetime.fromtimestamp(high, wall.tzinfo)
    if first > after:
        return first
    return wall.replace(fold=1)


def _shows(moment: dt.datetime) -> dt.datetime:
    """What the clocks of ``moment``'s zone show at that instant (naive): a wall time that
    does not exist comes back from the round trip through UTC as a different one."""
    return moment.astimezone(dt.UTC).astimezone(moment.tzinfo).replace(tzinfo=None)


def _quiet_hours(
    rows: list[Row],
    organisations: dict[int, Organisation],
    accounts: dict[int, ProviderAccount],
    now: dt.datetime,
    report: BatchReport,
) -> list[Row]:
    deferred: dict[int, dt.datetime] = {}
    default_start, default_end = settings.MESSAGING_QUIET_HOURS
    for row in rows:
        if not row.respect_quiet_hours:
            continue
        account = accounts.get(row.organisation_id)
        if account is not None and not account.quiet_hours_enabled:
            continue
        start = (account.quiet_hours_start if account else None) or default_start
        end = (account.quiet_hours_end if account else None) or default_end
        until = quiet_hours_end(now, organisations[row.organisation_id].time_zone, start, end)
        if until is not None:
            deferred[row.id] = until
    if deferred:
        with transaction.atomic():
            by_until: dict[dt.datetime, list[int]] = defaultdict(list)
            for pk, until in deferred.items():
                by_until[until].append(pk)
            for until, pks in by_until.items():
                Message.objects.filter(pk__in=pks, status=Status.SENDING).update(
                    status=Status.DEFERRED, due_at=until, lease_until=None, lease_owner=""
                )
            _events(
                [
                    (pk, Status.DEFERRED, {"reason": "quiet_hours", "until": _iso(u)}, None)
                    for pk, u in deferred.items()
                ],
                now,
            )
        report.deferred += len(deferred)
    return [r for r in rows if r.id not in deferred]


# --- handing over --------------------------------------------------------------------------------
def provider_config(channel: str, account: ProviderAccount | None) -> ProviderConfig:
    """The organisation's own credentials where it has them, else the platform's."""
    base_url = (account.infobip_base_url if account else "") or settings.INFOBIP_BASE_URL or ""
    api_key = (account.infobip_api_key if account else "") or settings.INFOBIP_API_KEY or ""
    own = bool(account and account.infobip_api_key)
    provider_path = settings.MESSAGING_PROVIDERS.get(channel, "")
    key = ProviderConfig.account_key_for(base_url, api_key) if own else "platform"
    return ProviderConfig(
        base_url=base_url,
        api_key=api_key,
        sms_sender=(account.sms_sender if account else "") or settings.MESSAGING_SMS_SENDER or "",
        whatsapp_sender=(account.whatsapp_sender if account else "")
        or settings.MESSAGING_WHATSAPP_SENDER
        or "",
        email_from=(account.email_from if account else "") or str(settings.DEFAULT_FROM_EMAIL),
        account_key=f"{provider_path.rsplit('.', 1)[-1]}:{key}",
    )


def _outgoing(row: Row) -> OutgoingMessage:
    return OutgoingMessage(
        our_id=row.our_id,
        channel=row.channel,
        to=row.to,
        body=row.body,
        subject=row.subject,
        html_body=row.html_body,
        headers=row.extras.get("headers") or {},
        whatsapp_template=row.extras.get("whatsapp_template"),
    )


def _hand_over(
    rows: list[Row], channel: str, config: ProviderConfig, owner: str, report: BatchReport
) -> None:
    provider = provider_for(channel, config)
    by_our_id = {r.our_id: r for r in rows}
    batches = provider.batches([_outgoing(r) for r in rows], settings.MESSAGING_PROVIDER_BATCH)
    for index, batch in enumerate(batches):
        batch_rows = [by_our_id[m.our_id] for m in batch]
        wait = _rate_wait(config.account_key)
        if wait is not None:
            # Throttled (by our limit or the provider's Retry-After): this and the rest of the
            # batch wait, without counting an attempt.
            rest = [by_our_id[m.our_id] for b in batches[index:] for m in b]
            _release(rest, timezone.now() + dt.timedelta(seconds=wait), "rate_limited")
            report.retried += len(rest)
            return
        mine = _mark_handed([r.id for r in batch_rows], owner)
        if len(mine) < len(batch_rows):
            # Not ours any more, or its campaign was paused or cancelled since the claim.
            halted = _halted_campaigns(
                {r.campaign_id for r in batch_rows if r.id not in mine and r.campaign_id}
            )
            if halted:
                _halt(
                    [r for r in batch_rows if r.id not in mine and r.campaign_id in halted],
                    halted,
                    timezone.now(),
                )
            batch = [m for m in batch if by_our_id[m.our_id].id in mine]
            batch_rows = [r for r in batch_rows if r.id in mine]
            if not batch:
                continue
        report.requests += 1
        try:
            results = provider.send(batch)
        except ProviderError as exc:
            _after_error(batch_rows, exc, config.account_key, provider.name, report)
            continue
        _record(batch_rows, results, provider.name, report)


def _rate_wait(account_key: str) -> float | None:
    """None when a request may go now (after sleeping out a short wait), else how long to
    defer the rows."""
    while True:
        wait = limiter().take(account_key)
        if wait <= 0:
            return None
        if wait > _MAX_INLINE_WAIT:
            return wait
        time.sleep(wait)


def _mark_handed(ids: list[int], owner: str) -> set[int]:
    """Stamp ``handed_at`` on the rows this worker still owns and return their ids.

    Committed on its own before the call: this is the line between "never reached the
    provider" (release freely) and "may have reached it" (ask the provider first). A row whose
    lease ran out and that the reconciler gave to another worker is no longer ours, and is
    left out of the request, and so is a row whose campaign was paused or cancelled after the
    claim: this statement reads the campaign's committed state, so a pause that committed
    before it stops the row, and one that commits after it finds the row already handed over.
    Matched by primary key and owner, not status, so the planner does not wander into the
    partial lease index (see _record)."""
    table = connection.ops.quote_name(Message._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET handed_at = %s, attempts = attempts + 1 "  # noqa: S608
            f"WHERE id IN ({marks}) AND lease_owner = %s AND (campaign_id IS NULL OR NOT EXISTS "
            "(SELECT 1 FROM campaigns_campaign c WHERE c.id = campaign_id"
            " AND c.state IN ('paused', 'cancelled'))) RETURNING id",
            [at, *ids, owner],
        )
        return {row[0] for row in cursor.fetchall()}


def backoff_seconds(attempts: int, retry_after: float | None) -> float:
    """Exponential with full jitter, capped; a provider's Retry-After is a floor."""
    base = float(settings.MESSAGING_BACKOFF_BASE_SECONDS)
    cap = float(settings.MESSAGING_BACKOFF_MAX_SECONDS)
    delay = random.uniform(base, min(cap, base * 2 ** max(0, attempts - 1)))  # noqa: S311
    if retry_after is not None:
        delay = max(delay, retry_after + random.uniform(0, 0.5))  # noqa: S311
    return min(delay, max(cap, retry_after or 0.0))


def _after_error(
    rows: list[Row], exc: ProviderError, account_key: str, provider: str, report: BatchReport
) -> None:
    now = timezone.now()
    detail = {"code": exc.code[:60], "http_status": exc.http_status, "provider": provider}
    if exc.uncertain:
        # The request may have arrived: leave the rows in "sending" with the lease run out, so
        # the reconciler asks the provider what it has before anything goes again.
        logger.warning("provider answer lost for %d messages (%s)", len(rows), exc.code)
        Message.objects.filter(pk__in=[r.id for r in rows], status=Status.SENDING).update(
            lease_until=now, last_error=str(exc)[:300]
        )
        report.uncertain += len(rows)
        return
    if exc.permanent:
        _end(rows, Status.FAILED, str(exc), now, {**detail, "permanent": True})
        report.failed += len(rows)
        return
    if exc.http_status == 429 or exc.retry_after:
        limiter().block(account_key, exc.retry_after or backoff_seconds(1, None))
    attempts = max(r.attempts for r in rows) + 1  # counted when handed over
    if attempts >= settings.MESSAGING_MAX_ATTEMPTS:
        reason = f"gave up after {attempts} attempts; last: {exc}"
        _end(rows, Status.FAILED, reason, now, {**detail, "gave_up": True})
        report.failed += len(rows)
        return
    delay = backoff_seconds(attempts, exc.retry_after)
    _release(rows, now + dt.timedelta(seconds=delay), exc.code or "provider_error", str(exc))
    report.retried += len(rows)


def _release(rows: list[Row], due: dt.datetime, code: str, error: str = "") -> None:
    """Back to waiting: the provider never took these rows (429/5xx or our own limit)."""
    now = timezone.now()
    with transaction.atomic():
        Message.objects.filter(pk__in=[r.id for r in rows], status=Status.SENDING).update(
            status=Status.DEFERRED,
            due_at=due,
            handed_at=None,
            lease_until=None,
            lease_owner="",
            last_error=error[:300],
        )
        _events(
            [
                (r.id, "retry_scheduled", {"code": code[:60], "until": _iso(due)}, None)
                for r in rows
            ],
            now,
        )


def _end(rows: list[Row], status: str, reason: str, now: dt.datetime, detail: dict) -> None:
    with transaction.atomic():
        Message.objects.filter(pk__in=[r.id for r in rows], status=Status.SENDING).update(
            status=status,
            final_at=now,
            lease_until=None,
            last_error=reason[:300],
            error_permanent=True,
        )
        _events([(r.id, status, detail, None) for r in rows], now)


def _record(rows: list[Row], results: list[SendResult], provider: str, report: BatchReport) -> None:
    now = timezone.now()
    by_id = {r.our_id: r for r in rows}
    table = connection.ops.quote_name(Message._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    params = []
    events: list[tuple[int, str, dict[str, Any], str | None]] = []
    answered = set()
    for result in results:
        row = by_id.get(result.our_id)
        if row is None:
            continue
        answered.add(row.id)
        final = at if result.status == Status.REJECTED else None
        params.append(
            [
                result.status,
                provider,
                result.provider_message_id[:200],
                result.parts,
                at,
                final,
                result.error_code[:300],
                row.id,
            ]
        )
        detail = {"provider": provider, **result.provider_status.as_detail()}
        events.append((row.id, result.status, detail, f"dispatch:{result.status}"))
        report.by_status[result.status] = report.by_status.get(result.status, 0) + 1
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole request instead of one per message (~4x faster).
            cursor.execute(
                f"UPDATE {table} AS m SET status = v.status, provider = v.provider, "  # noqa: S608
                "provider_message_id = v.pid, parts_reported = v.parts, sent_at = v.at, "
                "final_at = v.final, last_error = v.error, lease_until = NULL FROM unnest("
                "%s::text[], %s::text[], %s::text[], %s::int[], %s::timestamptz[], "
                "%s::timestamptz[], %s::text[], %s::bigint[]) "
                "AS v(status, provider, pid, parts, at, final, error, id) "
                # "|| ''" keeps the planner off the partial lease index: under churn it holds
                # many dead entries, and a primary-key lookup per row is what this needs.
                "WHERE m.id = v.id AND m.status || '' = 'sending' RETURNING m.id",
                [list(column) for column in zip(*params, strict=True)] if params else [[]] * 8,
            )
            # Only the rows this worker moved get an event (the reconciler may have been
            # first), so no key is needed to keep the timeline free of doubles.
            changed = {row[0] for row in cursor.fetchall()}
            events = [
                (pk, kind, detail, None) for pk, kind, detail, _key in events if pk in changed
            ]
        else:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, provider = %s, "  # noqa: S608
                "provider_message_id = %s, parts_reported = %s, sent_at = %s, final_at = %s, "
                "last_error = %s, lease_until = NULL WHERE id = %s AND status = 'sending'",
                params,
            )
        _events(events, now)
    report.sent = report.by_status.get("sent", 0)
    report.rejected = report.by_status.get("rejected", 0)
    missing = [r for r in rows if r.id not in answered]
    if missing:
        # Accepted request, but these ids are not in the answer: only the provider can say.
        Message.objects.filter(pk__in=[r.id for r in missing], status=Status.SENDING).update(
            lease_until=now, last_error="not in the provider's answer; reconciling"
        )
        report.uncertain += len(missing)


# --- events --------------------------------------------------------------------------------------
def _events(
    items: Iterable[tuple[int, str, dict[str, Any], str | None]],
    now: dt.datetime,
    *,
    source: str = EventSource.DISPATCH,
) -> None:
    """Append timeline rows; an event with a key that exists already is skipped (a replay)."""
    items = list(items)
    if not items:
        return
    organisations = dict(
        Message.objects.filter(pk__in=[i[0] for i in items]).values_list("pk", "organisation_id")
    )
    if connection.vendor == "postgresql" and all(key is None for *_, key in items):
        # COPY: several times faster than INSERT for a batch's worth of timeline rows; only
        # for events without a key, whose inserts can never conflict.
        _events_copy(items, organisations, now, source)
        return
    MessageEvent.objects.bulk_create(
        [
            MessageEvent(
                organisation_id=organisations[pk],
                message_id=pk,
                kind=kind,
                at=now,
                recorded_at=now,
                source=source,
                detail=detail,
                provider_event_key=key,
            )
            for pk, kind, detail, key in items
            if pk in organisations
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


def _events_copy(
    items: list[tuple[int, str, dict[str, Any], str | None]],
    organisations: dict[int, int],
    now: dt.datetime,
    source: str,
) -> None:
    table = connection.ops.quote_name(MessageEvent._meta.db_table)
    columns = "organisation_id, message_id, kind, at, recorded_at, source, detail"
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for pk, kind, detail, _key in items:
            if pk in organisations:
                copy.write_row([organisations[pk], pk, kind, now, now, source, json.dumps(detail)])


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


# --- draining ------------------------------------------------------------------------------------
def dispatch_drain(*, queue: str, seconds: float | None = None) -> int:
    """Run batches until nothing is due or ``seconds`` (default 60) have passed; then, if rows
    remain, wake another task so the work continues without one task holding a worker forever.

    The first full batch also wakes one more task on the same queue, so every worker that is
    free joins in (each claims its own rows); the chain stops when a task finds nothing."""
    from messaging.tasks import messages_dispatch

    budget = 60.0 if seconds is None else seconds
    owner = worker_id()
    started = time.monotonic()
    handled = 0
    helper_woken = False
    while True:
        report = dispatch_batch(queue=queue, owner=owner)
        handled += report.claimed
        if report.claimed == 0:
            return handled
        full = report.claimed >= settings.MESSAGING_CLAIM_BATCH
        if full and not helper_woken:
            messages_dispatch.apply_async(kwargs={"queue": queue}, queue=queue)
            helper_woken = True
        if time.monotonic() - started > budget:
            messages_dispatch.apply_async(kwargs={"queue": queue}, queue=queue)
            return handled


def due_queues(now: dt.datetime | None = None) -> list[str]:
    """The queues with rows due now (for the periodic sweep: deferred and scheduled rows)."""
    now = now or timezone.now()
    due = Message.objects.filter(status__in=WAITING, due_at__lte=now)
    queues = []
    if due.filter(kind=Kind.TRANSACTIONAL).exists():
        queues.append(str(settings.MESSAGING_TRANSACTIONAL_QUEUE))
    if due.filter(kind=Kind.MARKETING).exists():
        queues.append(str(settings.MESSAGING_BULK_QUEUE))
    return queues
