"""The evidence pack of a closed request (DSR-14): what a DPO shows the Information
Commissioner to prove a request was handled lawfully.

One ZIP with ``evidence.json`` (machine-readable) and ``evidence.html`` (printable): the
request's reference, type, channel and queue; its dates (received, clock start, due, extended,
decided, carried out, closed); the timeline of steps with who (actor type and id) and when, and
each step's data (ids, counts, codes); the decision and its reason; the result counts, including
an erasure's verification; the notices sent (kind, channel, language, status, time); the
recipients told (DSR-12) and the audit chain position of the closing step.

It holds no personal data beyond what must identify the request: no name, address or text
the subject wrote, and no step notes (attestations stay encrypted on the request, and are
emptied by an erasure). The contact is named only by its internal id.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

from django.core.files.base import ContentFile
from django.template.loader import render_to_string
from django.utils import timezone

from dsr.models import ArtifactKind, DataSubjectRequest, DsrArtifact


def evidence_document(request: DataSubjectRequest) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    steps = [
        {
            "at": iso(step.at),
            "kind": step.kind,
            "actor_type": step.actor_type,
            "actor_id": step.actor_id,
            "data": step.data,
            "has_note": bool(step.note),
        }
        for step in request.steps.order_by("at", "pk")
    ]
    notices = [
        {
            "kind": n.kind,
            "channel": n.channel,
            "language": n.language,
            "status": n.status,
            "created_at": iso(n.created_at),
            "sent_at": iso(n.sent_at),
        }
        for n in request.notices.order_by("created_at", "pk")
    ]
    recipients = [
        {
            "recipient": r.recipient,
            "kind": r.recipient_kind,
            "action": r.action,
            "disclosures": r.disclosures,
            "outcome": r.outcome,
            "notified_at": iso(r.notified_at),
        }
        for r in request.recipient_notifications.order_by("notified_at", "pk")
    ]
    pushes = [
        {"url_host": p.url.split("/")[2] if "//" in p.url else "", "status": p.status_code}
        for p in request.pushes.order_by("pushed_at", "pk")
    ]
    return {
        "format": "carely-dsr-evidence/1",
        "generated_at": timezone.now().isoformat(),
        "request": {
            "reference": request.reference,
            "organisation_id": request.organisation_id,
            "queue": "platform" if request.organisation_id is None else "organisation",
            "type": request.type,
            "channel": request.channel,
            "subject_kind": request.subject_kind,
            "contact_id": request.contact_id,
            "complaint_of": request.complaint_of.reference if request.complaint_of else None,
            "forwarded_from": request.forwarded_from.reference if request.forwarded_from else None,
        },
        "dates": {
            "received_at": iso(request.received_at),
            "clock_started_on": iso(request.clock_started_on),
            "due_on": iso(request.due_on),
            "extended_at": iso(request.extended_at),
            "verified_at": iso(request.verified_at),
            "decided_at": iso(request.decided_at),
            "executed_at": iso(request.executed_at),
            "closed_at": iso(request.closed_at),
            "answered_in_time": bool(
                request.decided_at
                and timezone.localtime(request.decided_at).date() <= request.due_on
            ),
        },
        "verification_method": request.verification_method,
        "extension_reason": request.extension_reason,
        "decision": {
            "decision": request.decision,
            "reason": request.decision_reason,
            "fee_cents": request.fee_cents,
        },
        "result": request.result,
        "steps": steps,
        "notices": notices,
        "recipients": recipients,
        "portability_pushes": pushes,
    }


def evidence_pack_build(request: DataSubjectRequest) -> DsrArtifact:
    document = evidence_document(request)
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    html = render_to_string("dsr/evidence.html", {"doc": document})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("evidence.json", body)
        archive.writestr("evidence.html", html)
    data = buffer.getvalue()
    artifact = DsrArtifact(
        organisation_id=request.organisation_id,
        request=request,
        contact=None,
        kind=ArtifactKind.EVIDENCE_PACK,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    artifact.stored_file.save("evidence.zip", ContentFile(data), save=False)
    artifact.save()
    return artifact
