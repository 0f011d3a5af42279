"""The reconciler: rows a worker left in ``sending`` past their lease (MSG-9).

Never a blind resend. For each such row:

- ``handed_at`` empty: the worker stopped before calling the provider. Back to ``queued``.
- the provider has our id (``Provider.lookup``, e.g. ``GET /sms/3/logs?messageId=...``): the
  worker died after the provider accepted; record ``sent`` (or the status the provider reports)
  and its ids. No second call.
- the provider does not have it: re-queued only once ``MESSAGING_RECONCILE_GRACE_SECONDS`` have
  passed since the call (logs lag behind sends); until then it waits for the next run.
- the provider cannot be asked (console, SES): after the grace period the row ends ``failed``
  with that reason; staff can send it again knowingly. A second copy is worse than none for a
  reminder and unlawful for a withdrawn marketing consent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.dispatch import _events, provider_config
from messaging.models import Message, ProviderAccount, Status
from messaging.providers import provider_for
from messaging.providers.base import LookupResult, ProviderError

logger = logging.getLogger("carely.messaging")

UNVERIFIABLE = (
    "the worker stopped after calling the provider, which cannot be asked whether it got the "
    "message; not sent again to avoid a duplicate"
)


@dataclass
class ReconcileReport:
    examined: int = 0
    released: int = 0
    confirmed: int = 0
    requeued: int = 0
    unverifiable: int = 0
    waiting: int = 0
    lookup_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def messages_reconcile(
    *, now: dt.datetime | None = None, limit: int = 5000, dry_run: bool = False
) -> ReconcileReport:
    now = now or timezone.now()
    grace = dt.timedelta(seconds=settings.MESSAGING_RECONCILE_GRACE_SECONDS)
    report = ReconcileReport()
    stuck = list(
        Message.objects.filter(status=Status.SENDING, lease_until__lt=now)
        .order_by("lease_until")
        .values_list("pk", "organisation_id", "channel", "our_id", "handed_at")[:limit]
    )
    report.examined = len(stuck)
    never_called = [pk for pk, _o, _c, _i, handed in stuck if handed is None]
    if never_called and not dry_run:
        _requeue(never_called, now, "released")
    report.released = len(never_called)

    groups: dict[tuple[int, str], list[tuple[int, str, dt.datetime]]] = defaultdict(list)
    for pk, organisation_id, channel, our_id, handed in stuck:
        if handed is not None:
            groups[(organisation_id, channel)].append((pk, our_id, handed))
    accounts = {
        a.organisation_id: a
        for a in ProviderAccount.objects.filter(organisation_id__in={k[0] for k in groups})
    }
    for (organisation_id, channel), rows in groups.items():
        provider = provider_for(channel, provider_config(channel, accounts.get(organisation_id)))
        try:
            found = provider.lookup([our_id for _pk, our_id, _h in rows])
        except ProviderError as exc:
            logger.warning("reconciler lookup failed (%s); will try again", exc.code)
            report.lookup_errors += len(rows)
            continue
        past_grace = [(pk, our_id) for pk, our_id, handed in rows if handed < now - grace]
        if found is None:
            if past_grace and not dry_run:
                _fail_unverifiable([pk for pk, _ in past_grace], now)
            report.unverifiable += len(past_grace)
            report.waiting += len(rows) - len(past_grace)
            continue
        confirmed = [(pk, found[our_id]) for pk, our_id, _h in rows if our_id in found]
        if confirmed and not dry_run:
            _confirm(confirmed, provider.name, now)
        report.confirmed += len(confirmed)
        missing = [pk for pk, our_id in past_grace if our_id not in found]
        if missing and not dry_run:
            _requeue(missing, now, "requeued", {"reason": "not_at_provider"})
        report.requeued += len(missing)
        report.waiting += len(rows) - len(confirmed) - len(missing)
    return report


def _requeue(pks: list[int], now: dt.datetime, kind: str, detail: dict | None = None) -> None:
    from messaging.services import dispatch_kick_on_commit

    with transaction.atomic():
        changed = list(
            Message.objects.filter(pk__in=pks, status=Status.SENDING, lease_until__lt=now)
            .values_list("pk", "kind")
            .select_for_update()
        )
        Message.objects.filter(pk__in=[pk for pk, _ in changed]).update(
            status=Status.QUEUED, due_at=now, handed_at=None, lease_until=None, lease_owner=""
        )
        _events([(pk, kind, detail or {}, None) for pk, _ in changed], now, source="reconciler")
        for kind_ in {k for _, k in changed}:
            dispatch_kick_on_commit(kind_)


def _confirm(confirmed: list[tuple[int, LookupResult]], provider: str, now: dt.datetime) -> None:
    with transaction.atomic():
        for pk, found in confirmed:
            final = now if found.status not in (Status.SENT,) else None
            Message.objects.filter(pk=pk, status=Status.SENDING).update(
                status=found.status,
                provider=provider,
                provider_message_id=found.provider_message_id[:200],
                parts_reported=found.parts,
                sent_at=now,
                final_at=final,
                lease_until=None,
                last_error="",
            )
        _events(
            [
                (
                    pk,
                    found.status,
                    {
                        "provider": provider,
                        "found_by": "lookup",
                        **found.provider_status.as_detail(),
                    },
                    f"dispatch:{found.status}",
                )
                for pk, found in confirmed
            ],
            now,
            source="reconciler",
        )


def _fail_unverifiable(pks: list[int], now: dt.datetime) -> None:
    with transaction.atomic():
        Message.objects.filter(pk__in=pks, status=Status.SENDING).update(
            status=Status.FAILED, final_at=now, lease_until=None, last_error=UNVERIFIABLE
        )
        _events(
            [(pk, Status.FAILED, {"reason": "unverifiable_after_crash"}, None) for pk in pks],
            now,
            source="reconciler",
        )
