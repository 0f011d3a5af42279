"""Campaign statistics (MSG-10): aggregates that reveal no person.

``campaign_stats`` counts in SQL (COUNT / SUM with GROUP BY), so it costs the same five queries
for ten messages or a million: the campaign's messages by channel, status and refusal reasons;
the clicked and action events by channel; the unsubscribes; and two hourly histograms for the
delivery chart. Nothing it returns names or identifies a contact.

What the staff pages and the API show is ``CampaignStats.masked()``: every count from 1 to 4 is
"<5", and where a group of cells adds up to a shown total and exactly one cell was masked, the
next smallest cell is masked too, so the masked one cannot be had by subtraction (ADR 0011).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Sum
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from campaigns.audiences import EXCLUSION_ORDER, exclusion_reason
from campaigns.models import Campaign, State
from consent.models import ConsentEntry
from consent.models import Source as ConsentSource
from consent.models import Status as ConsentStatus
from messaging.models import HANDED_OVER, WAITING, Message, MessageEvent
from messaging.models import Status as MessageStatus

# A cell of 1-4 people is shown as this; 0 describes nobody and is shown as 0.
MASK = "<5"
MASK_BELOW = 5

# Reached the provider, or ended before it without reaching the person.
UNDELIVERABLE = (
    MessageStatus.UNDELIVERABLE.value,
    MessageStatus.EXPIRED.value,
    MessageStatus.REJECTED.value,
    MessageStatus.FAILED.value,
)
# Withdrawals that are the patient's own answer to a message, not a clinic's entry.
UNSUBSCRIBE_SOURCES = (
    ConsentSource.UNSUBSCRIBE_LINK.value,
    ConsentSource.STOP_REPLY.value,
    ConsentSource.PREFERENCE_PAGE.value,
)
UNSUBSCRIBE_WINDOW = dt.timedelta(days=30)
# The delivery chart: one bucket per hour for the first two days, one per day after.
HOURLY_FOR = 48

CHANNEL_METRICS = (
    "queued",
    "waiting",
    "held",
    "cancelled",
    "refused",
    "failed",
    "sent",
    "delivered",
    "undeliverable",
    "clicked",
    "conversions",
    "cost_segments",
)
# Cells that add up to ``queued``: every message of the campaign is in exactly one.
OUTCOMES = ("waiting", "held", "cancelled", "refused", "failed", "sent")
FUNNEL = ("targeted", "queued", "sent", "delivered", "clicked", "converted")

Cell = int | str


@dataclass
class ChannelStats:
    queued: int = 0
    waiting: int = 0
    held: int = 0
    cancelled: int = 0
    refused: int = 0
    failed: int = 0
    sent: int = 0
    delivered: int = 0
    undeliverable: int = 0
    clicked: int = 0
    conversions: int = 0
    cost_segments: int = 0

    def add(self, status: str, n: int, parts: int) -> None:
        self.queued += n
        if status in WAITING or status == MessageStatus.SENDING:
            self.waiting += n
        elif status == MessageStatus.HELD:
            self.held += n
        elif status == MessageStatus.CANCELLED:
            self.cancelled += n
        elif status == MessageStatus.REFUSED:
            self.refused += n
        elif status == MessageStatus.FAILED:
            self.failed += n
        if status in HANDED_OVER:
            self.sent += n
            self.cost_segments += parts
        if status == MessageStatus.DELIVERED:
            self.delivered += n
        if status in UNDELIVERABLE:
            self.undeliverable += n


@dataclass
class Bucket:
    start: dt.datetime
    width: str  # "hour" or "day"
    sent: int = 0
    delivered: int = 0


@dataclass
class CampaignStats:
    """The counts of one campaign. Raw numbers: show ``masked()``, never these, to people."""

    campaign_id: int
    state: str
    computed_at: dt.datetime
    started_at: dt.datetime | None
    audience_total: int
    targeted: int
    unsubscribed: int
    totals: ChannelStats
    by_channel: dict[str, ChannelStats]
    excluded: dict[str, int]
    series: list[Bucket] = field(default_factory=list)

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())

    @property
    def funnel(self) -> list[tuple[str, int]]:
        values = {"targeted": self.targeted, "converted": self.totals.conversions}
        values.update(vars(self.totals))
        return [(step, values[step]) for step in FUNNEL]

    def masked(self) -> dict[str, Any]:
        """What may be shown (MSG-10): small cells masked, with secondary suppression."""
        totals = vars(self.totals)
        # "sent" is also a funnel step and a chart total: the second cell is another outcome.
        outcomes = suppress({k: totals[k] for k in OUTCOMES}, avoid=("sent",))
        counts: dict[str, Cell] = {
            "audience_total": mask(self.audience_total),
            "targeted": mask(self.targeted),
            "excluded_total": mask(self.excluded_total),
            **{k: mask(v) for k, v in totals.items()},
            **outcomes,
            "unsubscribed": mask(self.unsubscribed),
        }
        channels = list(self.by_channel)
        per_metric = {
            metric: suppress(
                {c: getattr(self.by_channel[c], metric) for c in channels},
                hidden_total=counts[metric] == MASK,
            )
            for metric in CHANNEL_METRICS
        }
        sent = suppress({str(i): b.sent for i, b in enumerate(self.series)})
        delivered = suppress({str(i): b.delivered for i, b in enumerate(self.series)})
        return {
            "campaign": self.campaign_id,
            "state": self.state,
            "computed_at": self.computed_at,
            "started_at": self.started_at,
            "counts": counts,
            "excluded": suppress(self.excluded),
            "by_channel": {c: {m: per_metric[m][c] for m in CHANNEL_METRICS} for c in channels},
            "funnel": [{"step": step, "count": mask(n)} for step, n in self.funnel],
            "series": [
                {
                    "start": b.start,
                    "width": b.width,
                    "sent": sent[str(i)],
                    "delivered": delivered[str(i)],
                }
                for i, b in enumerate(self.series)
            ],
        }


def mask(n: int) -> Cell:
    return MASK if 0 < n < MASK_BELOW else n


def suppress(
    cells: Mapping[str, int], *, avoid: Iterable[str] = (), hidden_total: bool = False
) -> dict[str, Cell]:
    """Mask the cells of a group whose total is shown elsewhere.

    Cells of 1-4 are masked (primary suppression). When exactly one is, the smallest other
    non-zero cell is masked too (secondary), or the lone one would be the total minus the rest;
    two masked cells leave only their sum. ``avoid`` names cells shown elsewhere as well, which
    are not picked as the second (masking them here would not hide them). ``hidden_total``: the
    group's total was masked, so every non-zero cell is (one channel's cell equals the total)."""
    if hidden_total:
        return {k: MASK if v else 0 for k, v in cells.items()}
    out: dict[str, Cell] = {k: mask(v) for k, v in cells.items()}
    hidden = [k for k, v in out.items() if v == MASK]
    if len(hidden) == 1:
        skip = {*hidden, *avoid}
        others = sorted((v, k) for k, v in cells.items() if k not in skip and v > 0)
        if others:
            out[others[0][1]] = MASK
    return out


def campaign_stats(campaign: Campaign, *, now: dt.datetime | None = None) -> CampaignStats:
    """Count one campaign in a fixed number of queries (five), whatever its size."""
    now = now or timezone.now()
    messages = Message.objects.filter(
        # organisation + dedupe key is the outbox's unique index; campaign_id is the truth.
        organisation_id=campaign.organisation_id,
        dedupe_key=campaign.dedupe_key,
        campaign_id=campaign.pk,
    )
    channels = [str(c) for c in campaign.channels]
    by_channel: dict[str, ChannelStats] = {c: ChannelStats() for c in channels}
    excluded: dict[str, int] = defaultdict(int)
    for reason, n in (campaign.exclusions or {}).items():
        excluded[str(reason)] += int(n)

    rows = (
        messages.values("channel", "status", "refusal_reasons")
        .annotate(n=Count("pk"), parts=Sum(Coalesce("parts_reported", "parts_estimated")))
        .order_by()
    )
    for row in rows:
        stats = by_channel.setdefault(row["channel"], ChannelStats())
        stats.add(row["status"], row["n"], row["parts"] or 0)
        if row["status"] == MessageStatus.REFUSED:
            # Counted under the same code materialisation would have used for them.
            excluded[exclusion_reason(row["refusal_reasons"] or ["unknown"])] += row["n"]

    events = (
        MessageEvent.objects.filter(
            organisation_id=campaign.organisation_id,
            message__in=messages,
            kind__in=("clicked", "action"),
        )
        .values("message__channel", "kind")
        .annotate(n=Count("message_id", distinct=True))
        .order_by()
    )
    for found in events:
        stats = by_channel.setdefault(found["message__channel"], ChannelStats())
        if found["kind"] == "clicked":
            stats.clicked += found["n"]
        else:
            stats.conversions += found["n"]

    unsubscribed = _unsubscribed(campaign, messages)
    started_at, series = _series(campaign, messages, now)
    totals = ChannelStats()
    for stats in by_channel.values():
        for metric in CHANNEL_METRICS:
            setattr(totals, metric, getattr(totals, metric) + getattr(stats, metric))
    return CampaignStats(
        campaign_id=campaign.pk,
        state=campaign.state,
        computed_at=now,
        started_at=started_at,
        audience_total=campaign.audience_total,
        targeted=campaign.targeted,
        unsubscribed=unsubscribed,
        totals=totals,
        by_channel=by_channel,
        excluded=_ordered({k: v for k, v in excluded.items() if v}),
        series=series,
    )


def _ordered(excluded: dict[str, int]) -> dict[str, int]:
    order = {code: n for n, code in enumerate(EXCLUSION_ORDER)}
    return dict(sorted(excluded.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _unsubscribed(campaign: Campaign, messages: Any) -> int:
    """Distinct contacts who withdrew consent for the campaign's purpose themselves (link, STOP
    reply, preference page) after their message was sent and within 30 days of it."""
    withdrawals = ConsentEntry.objects.filter(
        organisation_id=campaign.organisation_id,
        contact_id=OuterRef("contact_id"),
        purpose__slug=campaign.purpose,
        status=ConsentStatus.WITHDRAWN,
        source__in=UNSUBSCRIBE_SOURCES,
        recorded_at__gte=OuterRef("sent_at"),
        recorded_at__lte=OuterRef("sent_at") + UNSUBSCRIBE_WINDOW,
    )
    found = (
        messages.filter(sent_at__isnull=False, contact_id__isnull=False)
        .filter(Exists(withdrawals))
        .aggregate(n=Count("contact_id", distinct=True))
    )
    return int(found["n"] or 0)


def _hours(rows: Iterable[dict[str, Any]]) -> dict[dt.datetime, int]:
    return {row["hour"]: row["n"] for row in rows if row["hour"] is not None}


def _series(
    campaign: Campaign, messages: Any, now: dt.datetime
) -> tuple[dt.datetime | None, list[Bucket]]:
    """Sent (by ``sent_at``) and delivered (by the delivery report's time, ``final_at``) per
    hour from SQL, folded here into hourly buckets for 48 hours from the start, daily after."""
    utc = dt.UTC
    sent = _hours(
        messages.filter(sent_at__isnull=False)
        .annotate(hour=TruncHour("sent_at", tzinfo=utc))
        .values("hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    delivered = _hours(
        messages.filter(status=MessageStatus.DELIVERED, final_at__isnull=False)
        .annotate(hour=TruncHour("final_at", tzinfo=utc))
        .values("hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    hours = [*sent, *delivered]
    started = campaign.started_at or (min(hours) if hours else None)
    if started is None:
        return None, []
    origin = started.astimezone(utc).replace(minute=0, second=0, microsecond=0)

    def index(moment: dt.datetime) -> int:
        offset = max(0, int((moment.astimezone(utc) - origin) // dt.timedelta(hours=1)))
        return offset if offset < HOURLY_FOR else HOURLY_FOR + (offset - HOURLY_FOR) // 24

    last = max((index(h) for h in hours), default=0)
    if campaign.state in (State.SENDING, State.PAUSED):
        last = max(last, index(now))
    buckets = []
    for i in range(last + 1):
        if i < HOURLY_FOR:
            buckets.append(Bucket(origin + dt.timedelta(hours=i), "hour"))
        else:
            day = dt.timedelta(hours=HOURLY_FOR) + dt.timedelta(days=i - HOURLY_FOR)
            buckets.append(Bucket(origin + day, "day"))
    for hour, n in sent.items():
        buckets[index(hour)].sent += n
    for hour, n in delivered.items():
        buckets[index(hour)].delivered += n
    return started, buckets
