"""The frequency cap on marketing messages (MSG-4): at most N marketing messages of an
organisation reach one contact, all channels together, in any rolling window of D days
(``MessagingOptions.marketing_cap_count`` / ``marketing_cap_days``, 4 per 30 by default, a count
of 0 switches it off). Applied at dispatch (``messaging.dispatch._frequency_cap``): the row over
the cap ends ``refused`` with the reason ``frequency_cap``, so a campaign's exclusion counts say
why. Transactional messages are never counted or capped.

What counts is what reached the provider: ``handed_at`` inside the window on a row that is
``sending`` (handed, answer pending) or handed over (sent, delivered, ...). A row put back to
waiting after a 429 or a crash has its ``handed_at`` cleared, so it does not count.

The count for a batch is one query grouped by contact. It finds the rows through an existing
index on the contact (the foreign key's, or ``message_contact_created``); ``created_at`` cannot
bound the search (a row queued long ago may be handed today), so each contact's own rows are
read and the window, kind and status checked on them. Measured on PostgreSQL with 1M messages
(100,000 contacts, 10 each, a year of history): a batch of 1,000 contacts is a bitmap scan of
the contact index (10,000 entries, 8,775 heap pages) and takes 12-15 ms warm. No new index: one
on (contact, handed_at) for marketing rows would hold most of the table, not a small part.

Two workers dispatching different rows for the same contact at the same moment can each see the
count before the other's hand-over, and so overshoot by one; the cap is a courtesy to the
patient, not a legal limit, and a lock per contact on every marketing row would cost more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from carely.audit.services import audit_record
from carely.orgs.models import Organisation
from messaging.models import HANDED_OVER, Kind, Message, Status
from messaging.receipts import MessagingOptions

DEFAULT_COUNT = 4
DEFAULT_DAYS = 30
MAX_COUNT = 100
MAX_DAYS = 365


@dataclass(frozen=True)
class MarketingCap:
    count: int = DEFAULT_COUNT
    days: int = DEFAULT_DAYS

    @property
    def on(self) -> bool:
        return self.count > 0


def marketing_caps(organisation_ids: Iterable[int]) -> dict[int, MarketingCap]:
    """Each organisation's cap; the default for one that never changed its options."""
    ids = set(organisation_ids)
    caps = {pk: MarketingCap() for pk in ids}
    for pk, count, days in MessagingOptions.objects.filter(organisation_id__in=ids).values_list(
        "organisation_id", "marketing_cap_count", "marketing_cap_days"
    ):
        caps[pk] = MarketingCap(count, days)
    return caps


def marketing_handed_counts(
    contacts: Mapping[int, Iterable[int]],
    caps: Mapping[int, MarketingCap],
    *,
    now: dt.datetime,
) -> dict[tuple[int, int], int]:
    """How many marketing messages reached the provider per (organisation, contact) in each
    organisation's window before ``now``. ``contacts`` maps organisation id to contact ids.
    Contacts with none are absent. One query for all of them."""
    within = Q(pk__in=[])
    for organisation_id, contact_ids in contacts.items():
        cap = caps[organisation_id]
        ids = sorted(set(contact_ids))
        if not cap.on or not ids:
            continue
        within |= Q(
            organisation_id=organisation_id,
            contact_id__in=ids,
            handed_at__gt=now - dt.timedelta(days=cap.days),
        )
    rows = (
        Message.objects.filter(
            within, kind=Kind.MARKETING, status__in=(Status.SENDING, *HANDED_OVER)
        )
        .values("organisation_id", "contact_id")
        .annotate(n=Count("pk"))
        .values_list("organisation_id", "contact_id", "n")
        .order_by()
    )
    return {(organisation_id, contact_id): n for organisation_id, contact_id, n in rows}


def marketing_cap_set(*, organisation: Organisation, count: int, days: int) -> bool:
    """Change the organisation's cap (audited: it decides how often patients hear from the
    clinic). Returns whether anything changed."""
    if not 0 <= count <= MAX_COUNT:
        raise ValueError(
            f"marketing_cap_count: {count} is out of range; give 0 (no cap) to {MAX_COUNT}"
        )
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"marketing_cap_days: {days} is out of range; give 1 to {MAX_DAYS}")
    with transaction.atomic():
        options, _ = MessagingOptions.objects.select_for_update().get_or_create(
            organisation=organisation
        )
        before = {"count": options.marketing_cap_count, "days": options.marketing_cap_days}
        if before == {"count": count, "days": days}:
            return False
        options.marketing_cap_count = count
        options.marketing_cap_days = days
        options.updated_at = timezone.now()
        options.save(update_fields=["marketing_cap_count", "marketing_cap_days", "updated_at"])
        audit_record(
            action="messaging.marketing_cap_changed",
            organisation=organisation,
            object_type="messaging_options",
            object_id=options.pk,
            details={"count": count, "days": days, "before": before},
        )
    return True
