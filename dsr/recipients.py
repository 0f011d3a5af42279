"""Telling the recipients of a subject's data about a rectification, erasure or restriction
(DSR-12, GDPR Art. 19), and recording that each was told.

Recipients are found in the records, never assumed:

- processors (Infobip, Amazon SES): the subject's messages that a provider accepted (its name
  and message id on the outbox row);
- the clinic's own systems that read the subject through the API: access-log entries about the
  contact made with an API key;
- other controllers the subject's data was pushed to (DSR-7): successful ``PortabilityPush``
  rows of the contact's earlier requests.

Erasure empties what links those records to the contact, so the list is taken first
(``recipients_collect``) and the notices go out afterwards (``recipients_notify``). A recipient
with no disclosures is neither told nor recorded. The notices hold no personal data: a processor
gets the message ids it gave us, the clinic's admins the key and our contact id, another
controller the request reference it received the data under.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Count
from django.utils import timezone

from carely.api.models import ApiKey
from carely.audit.context import Actor
from carely.audit.models import AccessLogEntry, ActorType
from carely.orgs.models import Membership
from carely.orgs.roles import Role
from dsr.models import DataSubjectRequest, PortabilityPush, RecipientNotification, StepKind
from dsr.steps import dsr_step_add
from messaging.models import Message

log = logging.getLogger(__name__)

ACTIONS = ("rectification", "erasure", "restriction")
PROCESSOR_CONTACTS = {"infobip": "privacy@infobip.com", "ses": "aws-privacy@amazon.com"}
PUSH_TIMEOUT = urllib3.Timeout(connect=5.0, read=15.0)

_ACTION_ASKED = {
    "rectification": "correct",
    "erasure": "erase",
    "restriction": "restrict the processing of",
}


class RecipientKind:
    PROCESSOR = "processor"
    API_CLIENT = "api_client"
    CONTROLLER = "controller"


class Outcome:
    NOTIFIED = "notified"
    FAILED = "failed"


@dataclass(frozen=True)
class Recipient:
    """One recipient and what it received. ``references`` are what the recipient knows the data
    by (provider message ids, the request reference a push went under); ``detail`` is what the
    record may keep (ids, counts, host names)."""

    name: str  # "infobip", "ses", "api_key:12", "push:host"
    kind: str
    disclosures: int
    references: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


def processor_contacts() -> dict[str, str]:
    return dict(getattr(settings, "DSR_PROCESSOR_CONTACTS", PROCESSOR_CONTACTS))


# --- finding them (before the change) ------------------------------------------------------


def recipients_collect(request: DataSubjectRequest) -> list[Recipient]:
    """Every recipient the request's contact was disclosed to, from the records. Call it before an
    erasure: afterwards the messages and pushes no longer point at the contact."""
    if request.organisation_id is None or request.contact_id is None:
        return []
    return [
        *_processors(request.organisation_id, request.contact_id),
        *_api_clients(request.organisation_id, request.contact_id),
        *_controllers(request.organisation_id, request.contact_id),
    ]


def _processors(organisation_id: int, contact_id: int) -> list[Recipient]:
    known = processor_contacts()
    handed = (
        Message.objects.filter(
            organisation_id=organisation_id, contact_id=contact_id, provider__in=list(known)
        )
        .exclude(provider_message_id="")
        .values_list("provider", "provider_message_id")
        .order_by("pk")
    )
    ids: dict[str, list[str]] = defaultdict(list)
    for provider, message_id in handed:
        ids[provider].append(message_id)
    return [
        Recipient(
            name=provider,
            kind=RecipientKind.PROCESSOR,
            disclosures=len(message_ids),
            references=tuple(message_ids),
            detail={"messages": len(message_ids)},
        )
        for provider, message_ids in sorted(ids.items())
    ]


def _api_clients(organisation_id: int, contact_id: int) -> list[Recipient]:
    reads = (
        AccessLogEntry.objects.filter(
            organisation_id=organisation_id,
            subject_type="contact",
            subject_id=str(contact_id),
            actor_type=ActorType.API_KEY,
        )
        .values("actor_id")
        .annotate(n=Count("pk"))
        .order_by("actor_id")
    )
    counts = {row["actor_id"]: row["n"] for row in reads if row["actor_id"].isdigit()}
    keys = ApiKey.objects.filter(organisation_id=organisation_id, pk__in=[int(k) for k in counts])
    names = dict(keys.values_list("pk", "name"))
    return [
        Recipient(
            name=f"api_key:{key_id}",
            kind=RecipientKind.API_CLIENT,
            disclosures=n,
            references=(str(contact_id),),
            detail={"api_key_id": int(key_id), "api_key_name": names.get(int(key_id), "")},
        )
        for key_id, n in counts.items()
    ]


def _controllers(organisation_id: int, contact_id: int) -> list[Recipient]:
    pushes = (
        PortabilityPush.objects.filter(
            organisation_id=organisation_id,
            request__contact_id=contact_id,
            status_code__gte=200,
            status_code__lt=300,
        )
        .values_list("url", "request__reference")
        .order_by("pk")
    )
    by_url: dict[str, list[str]] = defaultdict(list)
    for url, reference in pushes:
        by_url[url].append(reference)
    return [
        Recipient(
            name=f"push:{urlsplit(url).hostname or '?'}"[:120],
            kind=RecipientKind.CONTROLLER,
            disclosures=len(references),
            references=tuple(dict.fromkeys(references)),
            detail={"url": url, "pushes": len(references)},
        )
        for url, references in by_url.items()
    ]


# --- telling them (after the change) -------------------------------------------------------


def recipients_notify(
    request: DataSubjectRequest,
    recipients: list[Recipient],
    *,
    action: str,
    actor: Actor,
) -> list[RecipientNotification]:
    """Tell each recipient with disclosures of ``action`` and record it: one
    ``RecipientNotification`` and one ``RECIPIENT_NOTIFIED`` step each. A recipient that could
    not be told is recorded as ``failed`` with the reason, so the DPO can follow up."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    send = {
        RecipientKind.PROCESSOR: _tell_processor,
        RecipientKind.API_CLIENT: _tell_admins,
        RecipientKind.CONTROLLER: _tell_controller,
    }
    recorded = []
    for recipient in recipients:
        if recipient.disclosures <= 0:
            continue
        outcome, detail = send[recipient.kind](request, recipient, action)
        notification = RecipientNotification.objects.create(
            organisation_id=request.organisation_id,
            request=request,
            recipient=recipient.name[:120],
            recipient_kind=recipient.kind,
            action=action,
            disclosures=recipient.disclosures,
            outcome=outcome,
            detail={**recipient.detail, **detail},
            notified_at=timezone.now(),
        )
        dsr_step_add(
            request,
            StepKind.RECIPIENT_NOTIFIED,
            actor=actor,
            data={
                "notification_id": notification.pk,
                # A controller's host may be an IP address, which the audit log rightly takes
                # for a phone number; the notification row names it.
                **(
                    {"recipient": notification.recipient}
                    if recipient.kind != RecipientKind.CONTROLLER
                    else {}
                ),
                "recipient_kind": recipient.kind,
                "action": action,
                "disclosures": recipient.disclosures,
                "outcome": outcome,
            },
        )
        recorded.append(notification)
    return recorded


def _mail(subject: str, body: str, to: list[str]) -> tuple[str, dict[str, Any]]:
    try:
        sent = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, to).send()
    except Exception as exc:  # SMTP and API backends raise their own errors; all mean "not told"
        log.warning("dsr recipient mail failed: %s", type(exc).__name__)
        return Outcome.FAILED, {"error": type(exc).__name__}
    return (Outcome.NOTIFIED, {"mailed": len(to)}) if sent else (Outcome.FAILED, {"mailed": 0})


def _tell_processor(
    request: DataSubjectRequest, recipient: Recipient, action: str
) -> tuple[str, dict[str, Any]]:
    address = processor_contacts().get(recipient.name)
    if not address:
        return Outcome.FAILED, {"error": "no_contact_address"}
    ids = "\n".join(f"- {message_id}" for message_id in recipient.references)
    body = (
        "Under our data processing agreement and GDPR Art. 19 and 28(3), please "
        f"{_ACTION_ASKED[action]} the personal data you hold as our processor for the "
        "messages with these ids (the ids you returned when you accepted them), including "
        "delivery reports and logs:\n\n"
        f"{ids}\n\n"
        f"Our reference: {request.reference} ({action}). Please confirm to this address when it "
        "is done."
    )
    subject = f"Data-subject request {request.reference}: {action} instruction"
    outcome, detail = _mail(subject, body, [address])
    return outcome, {**detail, "to": address}


def _tell_admins(
    request: DataSubjectRequest, recipient: Recipient, action: str
) -> tuple[str, dict[str, Any]]:
    assert request.organisation_id is not None
    admins = list(
        Membership.objects.filter(organisation_id=request.organisation_id, role=Role.ORG_ADMIN)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )
    if not admins:
        return Outcome.FAILED, {"error": "no_admin_address"}
    key_id = recipient.detail.get("api_key_id")
    key_name = recipient.detail.get("api_key_name") or "(deleted key)"
    contact_ids = ", ".join(recipient.references)
    body = (
        f"Your system that uses the API key “{key_name}” (id {key_id}) read the record of "
        f"contact id {contact_ids} through the Carely API {recipient.disclosures} time(s).\n\n"
        f"That record was the subject of a data-subject request ({request.reference}): "
        f"{action}. Please {_ACTION_ASKED[action]} the copy of this person's data in that system "
        "too (GDPR Art. 19), and keep a note of when you did."
    )
    subject = f"Data-subject request {request.reference}: {action} in systems using the API"
    return _mail(subject, body, admins)


def _tell_controller(
    request: DataSubjectRequest, recipient: Recipient, action: str
) -> tuple[str, dict[str, Any]]:
    url = str(recipient.detail["url"])
    payload: dict[str, Any] = {
        "notice": action,
        "reference": recipient.references[0],
        "request": request.reference,
    }
    if len(recipient.references) > 1:
        payload["references"] = list(recipient.references)
    try:
        response = _http().request(
            "POST",
            url,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            timeout=PUSH_TIMEOUT,
        )
    except urllib3.exceptions.HTTPError as exc:
        return Outcome.FAILED, {"error": type(exc).__name__}
    outcome = Outcome.NOTIFIED if 200 <= response.status < 300 else Outcome.FAILED
    return outcome, {"status": response.status}


_pool: urllib3.PoolManager | None = None


def _http() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        _pool = urllib3.PoolManager(num_pools=4, maxsize=2, retries=False)
    return _pool
