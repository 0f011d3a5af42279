"""``dsr_step_add``: the one way a request's record grows (DSR-14).

Each step is appended to the request and mirrored to the organisation's audit chain in the same
transaction, so the request's own timeline and the tamper-evident log can never disagree.
``data`` must hold no personal data (ids, counts, codes); the audit layer refuses values that
look like an e-mail or phone number.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from carely.audit.context import Actor, current_actor
from carely.audit.services import audit_record
from dsr.models import DataSubjectRequest, DsrStep


def dsr_step_add(
    request: DataSubjectRequest,
    kind: str,
    *,
    actor: Actor | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> DsrStep:
    actor = actor or current_actor()
    data = dict(data or {})
    with transaction.atomic():
        step = DsrStep(
            organisation_id=request.organisation_id,
            request=request,
            kind=kind,
            at=timezone.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            note=note,
            data=data,
        )
        step.save(force_insert=True)
        audit_record(
            action=f"dsr.{kind}",
            organisation=request.organisation_id,
            object_type="dsr.DataSubjectRequest",
            object_id=request.pk,
            details={"type": request.type, "state": request.state, **data},
            actor=actor,
        )
    return step
