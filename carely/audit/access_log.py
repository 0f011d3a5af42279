"""Recording and reading the personal-data access log (CNT-3).

Views and API endpoints call ``access_log_record`` in one line wherever they show, export or hand
out a data subject's personal data. The actor and request id come from the audit context, so the
same call is right for a person in the UI and for an API key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from carely.audit.context import Actor, current_actor, current_request_id
from carely.audit.models import AccessAction, AccessLogEntry, AccessPurpose, ActorType
from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation


class PurposeRequired(ValueError):
    """A full export or download needs a purpose; the UI asks the person for one."""


def _entries(
    *,
    organisation: Organisation | None,
    subject_type: str,
    subject_ids: Iterable[object],
    action: str,
    what: Iterable[str],
    purpose: str | None,
    actor: Actor | None,
) -> list[AccessLogEntry]:
    organisation = require_organisation(organisation)
    actor = actor or current_actor()
    if purpose is None:
        if action != AccessAction.VIEW:
            raise PurposeRequired("Say why you are exporting or downloading this record.")
        purpose = AccessPurpose.API if actor.type == ActorType.API_KEY else AccessPurpose.ROUTINE
    if purpose not in AccessPurpose.values:
        raise PurposeRequired(f"Unknown purpose {purpose!r}; choose one of the listed purposes.")
    fields = sorted(set(what))
    request_id = current_request_id()
    return [
        AccessLogEntry(
            organisation=organisation,
            actor_type=actor.type,
            actor_id=actor.id,
            subject_type=subject_type,
            subject_id=str(subject_id),
            action=action,
            what=fields,
            purpose=purpose,
            request_id=request_id,
        )
        for subject_id in subject_ids
    ]


def access_log_record(
    *,
    organisation: Organisation | None,
    subject_type: str,
    subject_id: object,
    action: str = AccessAction.VIEW,
    what: Iterable[str] = (),
    purpose: str | None = None,
    actor: Actor | None = None,
) -> AccessLogEntry:
    (entry,) = _entries(
        organisation=organisation,
        subject_type=subject_type,
        subject_ids=[subject_id],
        action=action,
        what=what,
        purpose=purpose,
        actor=actor,
    )
    entry.save()
    return entry


def access_log_record_many(
    *,
    organisation: Organisation | None,
    subject_type: str,
    subject_ids: Iterable[object],
    what: Iterable[str] = (),
    action: str = AccessAction.VIEW,
    purpose: str | None = None,
    actor: Actor | None = None,
) -> int:
    """One row per subject shown in a list page or API list, written in one query."""
    rows = _entries(
        organisation=organisation,
        subject_type=subject_type,
        subject_ids=subject_ids,
        action=action,
        what=what,
        purpose=purpose,
        actor=actor,
    )
    AccessLogEntry.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def access_log_list(
    *,
    organisation: Organisation | None,
    subject_type: str = "",
    subject_id: str = "",
    actor_type: str = "",
    actor_id: str = "",
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet[AccessLogEntry]:
    entries = AccessLogEntry.objects.for_organisation(organisation)
    filters: dict[str, Any] = {}
    if subject_type:
        filters["subject_type"] = subject_type
    if subject_id:
        filters["subject_id"] = subject_id
    if actor_type:
        filters["actor_type"] = actor_type
    if actor_id:
        filters["actor_id"] = actor_id
    if since:
        filters["occurred_at__date__gte"] = since
    if until:
        filters["occurred_at__date__lte"] = until
    return entries.filter(**filters).order_by("-occurred_at", "-pk")
