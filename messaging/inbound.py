"""Processing what providers tell us (MSG-6, MSG-7, CON-2, CON-6): delivery reports, inbound
replies (STOP), SES bounces and complaints. Called by ``webhook_receipt_process`` with a stored
receipt; never from the web request itself, which only stores and answers.

Everything here is idempotent, because providers retry and tasks are redelivered:

- a delivery report becomes a timeline event keyed by ``DeliveryReport.event_key`` (status,
  provider status id, ``doneAt``): the same report twice finds its key and changes nothing;
- an inbound message is unique per (organisation, channel, provider message id); its consent
  withdrawals are written in the same transaction, so a replay cannot withdraw twice;
- an SES complaint records one direct-marketing objection per contact, a bounce one
  undeliverable-address row per address (counted, not duplicated).

Infobip's JSON is read here rather than through the channel's adapter: the webhook URL says it is
Infobip whatever adapter ``MESSAGING_PROVIDERS`` names for sending (console in development), and
reports of SMS, e-mail and WhatsApp share one shape (INTEGRATIONS.md 1.5, 1.8, 1.9).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from carely.audit.context import Actor, acting_as
from carely.lib.normalise import InvalidPhoneNumber
from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation
from carely.privacy.fields import blind_indexes
from consent.models import ObjectionKind, Source, SuppressionReason
from consent.models import Status as ConsentStatus
from consent.selectors import consent_states, objection_list, purpose_list
from consent.services import (
    MARKETING_PURPOSE,
    ConsentInvalid,
    consent_withdraw,
    objection_record,
    suppression_add,
)
from contacts.models import Contact
from messaging import sns
from messaging.models import (
    WAITING,
    Channel,
    EventSource,
    Kind,
    Message,
    MessageEvent,
    Status,
)
from messaging.providers.base import DeliveryReport, ProviderStatus
from messaging.providers.base import InboundMessage as ProviderInbound
from messaging.receipts import (
    InboundMessage,
    InboundOutcome,
    ReceiptSource,
    StopKeywordSet,
    UndeliverableAddress,
    WebhookReceipt,
    body_digest,
    receipt_keep,
)
from messaging.services import MessageNotCancellable, message_cancel, whatsapp_inbound_note

logger = logging.getLogger("carely.messaging.webhooks")

# Infobip status groups (INTEGRATIONS.md 1.7) -> our statuses. PENDING is "accepted, on its way".
_GROUP_STATUS = {1: "sent", 2: "undeliverable", 3: "delivered", 4: "expired", 5: "rejected"}
# DELIVERED_TO_OPERATOR is in the DELIVERED group but intermediate: the handset report follows.
_DELIVERED_TO_OPERATOR = 2
_REPORT_FINAL = {Status.DELIVERED, Status.UNDELIVERABLE, Status.EXPIRED, Status.REJECTED}
# A report may move a message out of these: it is waiting, on its way, or ended here without
# proof (the reconciler's "unverifiable" failure) while the provider had it after all.
_REPORT_MAY_UPDATE = (*WAITING, Status.SENDING, Status.SENT, Status.FAILED)
_PENDING_RECEIPT_AGE = dt.timedelta(minutes=5)
_RECEIPT_MAX_ATTEMPTS = 5


# --- parsing Infobip ----------------------------------------------------------------------------
def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))  # 3.11 reads Infobip's "+0000"
    except ValueError:
        return None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)


def _status(raw: Any) -> ProviderStatus:
    raw = raw if isinstance(raw, Mapping) else {}
    return ProviderStatus(
        group_id=_int(raw.get("groupId")),
        group_name=str(raw.get("groupName") or "")[:60],
        id=_int(raw.get("id")),
        name=str(raw.get("name") or "")[:60],
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def our_status(status: ProviderStatus) -> str:
    if status.id == _DELIVERED_TO_OPERATOR:
        return Status.SENT
    return _GROUP_STATUS.get(status.group_id or 0, Status.SENT)


def reports_parse(payload: Any) -> list[DeliveryReport]:
    """Delivery reports of SMS (v2 and v3 sends), e-mail and WhatsApp: ``{"results": [...]}``.
    ``messageId`` is our own id (sent with each message); the part count is ``messageCount``
    (v3, WhatsApp) or ``smsCount`` (v2, e-mail)."""
    reports = []
    for item in _results(payload):
        status = _status(item.get("status"))
        error = _mapping(item.get("error"))
        parts = _int(item.get("messageCount", item.get("smsCount")))
        permanent = error.get("permanent")
        reports.append(
            DeliveryReport(
                our_id=str(item.get("messageId") or "")[:200],
                provider_message_id=str(item.get("messageId") or "")[:200],
                status=our_status(status),
                at=_time(item.get("doneAt")),
                parts=parts,
                provider_status=status,
                error_id=_int(error.get("id")),
                error_name=str(error.get("name") or "")[:60],
                error_permanent=permanent if isinstance(permanent, bool) else None,
            )
        )
    return reports


def inbound_parse(payload: Any) -> list[ProviderInbound]:
    """Inbound SMS (``MO_JSON_2``: text, keyword) and WhatsApp (``integrationType`` WHATSAPP,
    ``message.text``) in one list; numbers arrive without "+"."""
    found = []
    for item in _results(payload):
        whatsapp = str(item.get("integrationType") or "").upper() == "WHATSAPP"
        message = _mapping(item.get("message"))
        text = message.get("text") if whatsapp else item.get("text")
        sender = str(item.get("from") or "").strip().lstrip("+")
        found.append(
            ProviderInbound(
                channel=Channel.WHATSAPP if whatsapp else Channel.SMS,
                sender=f"+{sender}" if sender.isdigit() else sender,
                to=str(item.get("to") or ""),
                text=str(text or ""),
                keyword="" if whatsapp else str(item.get("keyword") or ""),
                received_at=_time(item.get("receivedAt")),
                provider_message_id=str(item.get("messageId") or "")[:200],
            )
        )
    return found


def _results(payload: Any) -> list[Mapping[str, Any]]:
    results = payload.get("results") if isinstance(payload, Mapping) else None
    if not isinstance(results, list):
        raise ValueError("the body has no results list")
    return [item for item in results if isinstance(item, Mapping)]


# --- STOP keywords --------------------------------------------------------------------------------
def normalise_keyword(text: str) -> str:
    """Lower case, accents dropped (``ODJAVA``, ``odjava``, ``Odjáva`` are one word), inner
    whitespace collapsed, surrounding whitespace and closing punctuation removed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.split()).strip(" .!?,;:-")


def stop_keywords(organisation: Organisation) -> frozenset[str]:
    extra = (
        StopKeywordSet.objects.filter(organisation=organisation)
        .values_list("keywords", flat=True)
        .first()
    ) or []
    words = [*settings.MESSAGING_STOP_KEYWORDS, *(str(w) for w in extra)]
    return frozenset(n for n in (normalise_keyword(w) for w in words) if n)


def stop_keyword_match(*, text: str, keyword: str, keywords: Iterable[str]) -> str:
    """The STOP keyword a reply is, or "" for an ordinary reply.

    The whole reply must be a keyword, or ``<something> <keyword>`` (the operators' "<keyword>
    STOP" form, e.g. ``XYZ STOP``): a sentence that merely contains "stop" ("don't stop my
    reminders") is not a withdrawal. Infobip's own ``keyword`` field is checked as well.
    """
    known = set(keywords)
    for candidate in (keyword, text):
        words = normalise_keyword(candidate or "")
        if not words:
            continue
        if words in known:
            return words
        tokens = words.split(" ")
        if len(tokens) == 2 and tokens[1] in known:
            return tokens[1]
    return ""


# --- delivery reports -----------------------------------------------------------------------------
@dataclass
class ReportsOutcome:
    applied: int = 0
    duplicates: int = 0
    unknown: int = 0

    def __str__(self) -> str:
        return f"reports applied={self.applied} duplicates={self.duplicates} unknown={self.unknown}"


def delivery_reports_apply(
    *, organisation: Organisation, reports: Sequence[DeliveryReport]
) -> ReportsOutcome:
    organisation = require_organisation(organisation)
    outcome = ReportsOutcome()
    ids = {r.our_id for r in reports if r.our_id}
    messages = {
        m.our_id: m.pk
        for m in Message.objects.for_organisation(organisation)
        .filter(our_id__in=ids)
        .only("pk", "our_id")
    }
    for report in reports:
        message_id = messages.get(report.our_id)
        if message_id is None:
            # Not ours in this organisation (another tenant's id is as unknown as a made-up one).
            outcome.unknown += 1
            continue
        if _report_apply(message_id, report):
            outcome.applied += 1
        else:
            outcome.duplicates += 1
    if outcome.unknown:
        logger.warning(
            "delivery reports for unknown message ids: organisation=%s count=%s",
            organisation.pk,
            outcome.unknown,
        )
    return outcome


def _report_apply(message_id: int, report: DeliveryReport) -> bool:
    now = timezone.now()
    at = report.at or now
    key = report.event_key
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        if MessageEvent.objects.filter(message_id=message_id, provider_event_key=key).exists():
            return False
        negative = report.status in (Status.UNDELIVERABLE, Status.EXPIRED, Status.REJECTED)
        permanent = bool(report.error_permanent)
        detail: dict[str, Any] = {"provider": "infobip", **report.provider_status.as_detail()}
        if report.parts is not None:
            detail["parts"] = report.parts
        if report.error_id:
            detail.update(error_id=report.error_id, error_name=report.error_name)
        if negative:
            # The provider's own verdict: a permanent error (unknown subscriber) will fail again;
            # a temporary one (phone off until the validity ran out) may be sent again later.
            detail.update(permanent=permanent, retryable=not permanent)
        if report.provider_status.id == _DELIVERED_TO_OPERATOR:
            detail["intermediate"] = True
        MessageEvent.objects.create(
            organisation_id=message.organisation_id,
            message=message,
            kind=report.status,
            at=at,
            recorded_at=now,
            source=EventSource.WEBHOOK,
            detail=detail,
            provider_event_key=key,
        )
        changes: dict[str, Any] = {}
        if report.parts is not None:
            changes["parts_reported"] = report.parts  # what the clinic is metered for (TEN-5)
        if message.status in _REPORT_MAY_UPDATE:
            if report.status in _REPORT_FINAL:
                changes.update(status=report.status, final_at=at)
                if negative:
                    changes.update(
                        error_permanent=permanent,
                        last_error=(report.error_name or report.provider_status.name)[:300],
                    )
            elif message.status != Status.SENT:
                changes["status"] = Status.SENT
            if message.sent_at is None:
                changes["sent_at"] = at
            if changes.get("status") and message.status in (Status.SENDING, *WAITING):
                # The provider has it: no worker or reconciler may hand it over again.
                changes.update(lease_until=None, lease_owner="")
            if not message.provider:
                changes.update(provider="infobip", provider_message_id=report.provider_message_id)
        if changes:
            Message.objects.filter(pk=message_id).update(**changes)
    return True


# --- inbound messages -----------------------------------------------------------------------------
@dataclass
class InboundResult:
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def __str__(self) -> str:
        return "inbound " + " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))


def inbound_apply(
    *, organisation: Organisation, messages: Sequence[ProviderInbound]
) -> InboundResult:
    organisation = require_organisation(organisation)
    keywords = stop_keywords(organisation)
    result = InboundResult()
    for item in messages:
        result.add(_inbound_one(organisation, item, keywords))
    return result


def _senders(organisation: Organisation, sender: str) -> list[Contact]:
    # for_organisation() is typed as the scoped queryset; the manager's class also has the blind
    # index lookups.
    contacts: Any = Contact.objects.for_organisation(organisation)
    try:
        found = contacts.filter_blind(region=organisation.default_phone_region, phone=sender)
    except InvalidPhoneNumber:
        return []
    return list(found.order_by("pk"))


def _inbound_one(
    organisation: Organisation, item: ProviderInbound, keywords: frozenset[str]
) -> str:
    if not item.provider_message_id:
        logger.warning("inbound message without an id ignored: organisation=%s", organisation.pk)
        return "no_id"
    now = timezone.now()
    received = min(item.received_at or now, now)
    keyword = stop_keyword_match(text=item.text, keyword=item.keyword, keywords=keywords)
    contacts = _senders(organisation, item.sender)
    try:
        with transaction.atomic():
            evidence = InboundMessage.objects.create(
                organisation=organisation,
                channel=item.channel,
                provider_message_id=item.provider_message_id,
                sender=item.sender[:64],
                text=item.text,
                keyword=keyword[:40],
                received_at=received,
                recorded_at=now,
                contact=contacts[0] if contacts else None,
                outcome=InboundOutcome.UNKNOWN_SENDER,
            )
            if item.channel == Channel.WHATSAPP:
                for contact in contacts:
                    whatsapp_inbound_note(organisation=organisation, contact=contact, at=received)
            if not contacts:
                outcome = InboundOutcome.UNKNOWN_SENDER
            elif not keyword:
                outcome = InboundOutcome.NOT_A_KEYWORD
            else:
                entries = _withdraw(organisation, contacts, item.channel, received, evidence.pk)
                evidence.consent_entry_ids = entries
                evidence.cancelled_messages = _cancel_queued_marketing(
                    organisation, [c.pk for c in contacts], item.channel
                )
                outcome = InboundOutcome.WITHDRAWN if entries else InboundOutcome.ALREADY_WITHDRAWN
            evidence.outcome = outcome
            evidence.save(update_fields=["outcome", "consent_entry_ids", "cancelled_messages"])
    except IntegrityError:
        return "duplicate"  # the same inbound message, delivered again
    if outcome == InboundOutcome.UNKNOWN_SENDER:
        # Ids only: the number is in the (encrypted) evidence row, never in a log line.
        logger.info(
            "inbound message from an unknown sender: organisation=%s inbound=%s stop=%s",
            organisation.pk,
            evidence.pk,
            bool(keyword),
        )
    return str(outcome)


def _withdraw(
    organisation: Organisation,
    contacts: Sequence[Contact],
    channel: str,
    received: dt.datetime,
    evidence_id: int,
) -> list[int]:
    """Withdraw, on this channel, every purpose the sender currently consents to, and always the
    marketing purpose (so the STOP stands in the ledger even before any consent). Nothing is
    written where the latest entry is already a withdrawal: a second STOP changes nothing."""
    states = consent_states(
        organisation=organisation, contact_ids=[c.pk for c in contacts], channels=(channel,)
    )
    purposes = list(purpose_list(organisation=organisation))
    entries: list[int] = []
    for contact in contacts:
        current = states.get(contact.pk, {})
        for purpose in purposes:
            state = current.get((purpose.slug, channel))
            given = state is not None and state.status == ConsentStatus.GIVEN
            if not (given or (state is None and purpose.slug == MARKETING_PURPOSE)):
                continue
            entry = consent_withdraw(
                contact=contact,
                purpose=purpose,
                channel=channel,
                source=Source.STOP_REPLY,
                recorded_at=received,
                note=f"STOP reply by {channel} (inbound message #{evidence_id}).",
            )
            entries.append(entry.pk)
    return entries


def _cancel_queued_marketing(
    organisation: Organisation, contact_ids: list[int], channel: str
) -> int:
    """CON-2: a withdrawal stops what is not yet with the provider. Dispatch re-decides anyway
    (MSG-5); cancelling also tells staff why in each message's timeline."""
    queued = Message.objects.for_organisation(organisation).filter(
        contact_id__in=contact_ids, channel=channel, kind=Kind.MARKETING, status__in=WAITING
    )
    cancelled = 0
    for message in queued.only("pk", "organisation_id", "status"):
        try:
            message_cancel(message=message, source=EventSource.WEBHOOK, reason_code="stop_reply")
        except MessageNotCancellable:
            continue  # a worker claimed it meanwhile; its eligibility check refuses it
        cancelled += 1
    return cancelled


# --- SES (SNS) ------------------------------------------------------------------------------------
def _email_digest(address: str) -> str | None:
    try:
        return blind_indexes(Contact)["email"].digest(address)
    except ValueError:
        return None


def _ses_message(organisation: Organisation, mail: Mapping[str, Any]) -> Message | None:
    tags = _mapping(mail.get("tags"))
    ours = tags.get("carely-id") or []
    messages = Message.objects.for_organisation(organisation)
    if ours:
        found = messages.filter(our_id=str(ours[0])).first()
        if found is not None:
            return found
    ses_id = str(mail.get("messageId") or "")
    if not ses_id:
        return None
    return messages.filter(provider="ses", provider_message_id=ses_id).first()


def _ses_event(
    message: Message | None,
    kind: str,
    key: str,
    at: dt.datetime,
    detail: dict[str, Any],
    status: str | None = None,
) -> None:
    if message is None:
        return
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=message.pk)
        if MessageEvent.objects.filter(message=locked, provider_event_key=key).exists():
            return
        MessageEvent.objects.create(
            organisation_id=locked.organisation_id,
            message=locked,
            kind=kind,
            at=at,
            source=EventSource.WEBHOOK,
            detail={"provider": "ses", **detail},
            provider_event_key=key,
        )
        if status and locked.status in _REPORT_MAY_UPDATE:
            changes: dict[str, Any] = {"status": status, "final_at": at}
            if status == Status.UNDELIVERABLE:
                changes.update(error_permanent=True, last_error=detail.get("bounce_type", ""))
            Message.objects.filter(pk=locked.pk).update(**changes)


def undeliverable_mark(
    *, organisation: Organisation, kind: str, digest: str, reason: str, at: dt.datetime
) -> None:
    with transaction.atomic():
        row, created = UndeliverableAddress.objects.select_for_update().get_or_create(
            organisation=organisation,
            kind=kind,
            digest=digest,
            defaults={"reason": reason[:60], "first_at": at, "last_at": at},
        )
        if not created:
            row.reports += 1
            row.last_at = max(row.last_at, at)
            row.reason = reason[:60]
            row.save(update_fields=["reports", "last_at", "reason"])


def ses_notification_apply(*, organisation: Organisation, notification: Mapping[str, Any]) -> str:
    kind = str(notification.get("notificationType") or notification.get("eventType") or "")
    mail = _mapping(notification.get("mail"))
    message = _ses_message(organisation, mail)
    if kind == "Bounce":
        return _ses_bounce(organisation, notification.get("bounce") or {}, message)
    if kind == "Complaint":
        return _ses_complaint(organisation, notification.get("complaint") or {}, message)
    if kind == "Delivery":
        delivery = notification.get("delivery") or {}
        at = _time(delivery.get("timestamp")) or timezone.now()
        _ses_event(message, Status.DELIVERED, f"ses:delivery:{at.isoformat()}", at, {}, "delivered")
        return "delivery"
    return f"ignored:{kind[:30]}"


def _ses_bounce(
    organisation: Organisation, bounce: Mapping[str, Any], message: Message | None
) -> str:
    bounce_type = str(bounce.get("bounceType") or "")
    sub_type = str(bounce.get("bounceSubType") or "")
    at = _time(bounce.get("timestamp")) or timezone.now()
    key = f"ses:bounce:{bounce.get('feedbackId') or at.isoformat()}"
    detail = {"bounce_type": bounce_type, "bounce_sub_type": sub_type}
    if bounce_type != "Permanent":
        # Soft bounces pass (a full mailbox); SES retried already. Timeline only.
        _ses_event(message, "bounced_transient", key, at, detail)
        return "bounce_transient"
    digests = {
        d
        for r in bounce.get("bouncedRecipients") or []
        if isinstance(r, Mapping)
        for d in [_email_digest(str(r.get("emailAddress") or ""))]
        if d
    }
    for digest in digests:
        undeliverable_mark(
            organisation=organisation,
            kind="email",
            digest=digest,
            reason=f"ses_bounce_permanent:{sub_type}",
            at=at,
        )
    _ses_event(message, Status.UNDELIVERABLE, key, at, detail, Status.UNDELIVERABLE)
    # Sending again to a hard-bounced address hurts the sender's reputation for every clinic.
    contacts = Contact.objects.for_organisation(organisation).filter(email_bidx__in=digests)
    queued = Message.objects.for_organisation(organisation).filter(
        contact__in=contacts, channel=Channel.EMAIL, status__in=WAITING
    )
    for queued_message in queued.only("pk", "organisation_id", "status"):
        try:
            message_cancel(
                message=queued_message, source=EventSource.WEBHOOK, reason_code="address_bounced"
            )
        except MessageNotCancellable:
            continue
    return "bounce_permanent"


def _ses_complaint(
    organisation: Organisation, complaint: Mapping[str, Any], message: Message | None
) -> str:
    """A spam complaint is an objection to direct marketing (CON-6): permanent, suppressed."""
    at = min(_time(complaint.get("timestamp")) or timezone.now(), timezone.now())
    feedback = str(complaint.get("complaintFeedbackType") or "")[:40]
    key = f"ses:complaint:{complaint.get('feedbackId') or at.isoformat()}"
    _ses_event(message, "complained", key, at, {"feedback_type": feedback})
    for recipient in complaint.get("complainedRecipients") or []:
        address = str(recipient.get("emailAddress") or "") if isinstance(recipient, Mapping) else ""
        digest = _email_digest(address)
        if not digest:
            continue
        contacts = list(Contact.objects.for_organisation(organisation).filter(email_bidx=digest))
        if not contacts:
            try:  # an address no contact has (any more): still never market to it again
                suppression_add(
                    organisation=organisation,
                    email=address,
                    source=Source.SYSTEM,
                    reason=SuppressionReason.OBJECTION,
                )
            except ConsentInvalid:
                logger.warning("SES complaint with an unusable address: org=%s", organisation.pk)
            continue
        for contact in contacts:
            already = objection_list(organisation=organisation, contact_id=contact.pk).filter(
                kind=ObjectionKind.DIRECT_MARKETING
            )
            if already.exists():
                continue
            objection_record(
                contact=contact,
                kind=ObjectionKind.DIRECT_MARKETING,
                source=Source.SYSTEM,
                received_at=at,
                note="Spam complaint reported by the recipient's mailbox provider (Amazon SES).",
            )
    return "complaint"


# --- receipts -------------------------------------------------------------------------------------
def receipt_store(
    *, organisation: Organisation, source: str, body: bytes
) -> tuple[WebhookReceipt, bool]:
    """Store a webhook's raw body once (a provider's retry of the same body finds the first) and
    process it after commit. Returns the receipt and whether it is new."""
    digest = body_digest(body)
    text = body.decode("utf-8")
    try:
        with transaction.atomic():
            receipt = WebhookReceipt.objects.create(
                organisation=organisation, source=source, body_sha256=digest, body=text
            )
            _process_on_commit(receipt.pk)
    except IntegrityError:
        existing = WebhookReceipt.objects.get(organisation=organisation, body_sha256=digest)
        return existing, False
    return receipt, True


def _process_on_commit(receipt_id: int) -> None:
    from messaging.receipts import webhook_receipt_process

    transaction.on_commit(lambda: webhook_receipt_process.delay(receipt_id))


def receipt_process(*, receipt_id: int) -> str:
    """Apply one stored receipt; a processed one is left alone. A body that cannot be read is
    marked processed with its error code: retrying would not make it readable."""
    receipt = WebhookReceipt.objects.select_related("organisation").filter(pk=receipt_id).first()
    if receipt is None or receipt.processed_at is not None:
        return "already_processed"
    WebhookReceipt.objects.filter(pk=receipt_id).update(attempts=receipt.attempts + 1)
    organisation = receipt.organisation
    with acting_as(Actor.system(f"webhook:{receipt.source}")):
        try:
            payload = json.loads(receipt.body)
            outcome = _apply(organisation, receipt.source, payload)
        except (ValueError, TypeError, sns.SnsRefused) as exc:
            code = exc.code if isinstance(exc, sns.SnsRefused) else "unreadable_body"
            logger.warning("webhook receipt %s not applied: %s", receipt_id, code)
            outcome = f"error:{code}"
    WebhookReceipt.objects.filter(pk=receipt_id).update(
        processed_at=timezone.now(), outcome=outcome[:200]
    )
    return outcome


def _apply(organisation: Organisation, source: str, payload: Any) -> str:
    if source == ReceiptSource.INFOBIP_REPORTS:
        return str(
            delivery_reports_apply(organisation=organisation, reports=reports_parse(payload))
        )
    if source == ReceiptSource.INFOBIP_INBOUND:
        return str(inbound_apply(organisation=organisation, messages=inbound_parse(payload)))
    if source == ReceiptSource.SES_SNS:
        return _sns_apply(organisation, payload)
    raise ValueError(f"unknown receipt source {source!r}")


def _sns_apply(organisation: Organisation, envelope: Mapping[str, Any]) -> str:
    kind = str(envelope.get("Type") or "")
    if kind == "SubscriptionConfirmation":
        sns.subscription_confirm(envelope)
        return "subscription_confirmed"
    if kind != "Notification":
        return f"ignored:{kind[:30]}"
    notification = json.loads(str(envelope.get("Message") or "{}"))
    if not isinstance(notification, Mapping):
        raise ValueError("the SNS Message is not a JSON object")
    return ses_notification_apply(organisation=organisation, notification=notification)


def receipts_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Re-run receipts whose task never ran (a lost worker, a broker outage) and delete
    processed ones after MESSAGING_WEBHOOK_RECEIPT_KEEP_DAYS (their raw bodies hold numbers)."""
    now = now or timezone.now()
    pending = list(
        WebhookReceipt.objects.filter(
            processed_at__isnull=True,
            received_at__lt=now - _PENDING_RECEIPT_AGE,
            attempts__lt=_RECEIPT_MAX_ATTEMPTS,
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
    for receipt_id in pending:
        receipt_process(receipt_id=receipt_id)
    deleted, _ = WebhookReceipt.objects.filter(processed_at__lt=now - receipt_keep()).delete()
    return {"reprocessed": len(pending), "deleted": deleted}


# --- selectors for the engine and the UI ----------------------------------------------------------
def undeliverable_digests(*, organisation: Organisation, digests: Iterable[str]) -> set[str]:
    """Which of these blind-index digests (the contacts' ``email_bidx``/``phone_bidx``) are known
    to be permanently undeliverable. For the staff pages; enqueue and dispatch consult the
    table in ``messaging.services.sending_decide``, in one query per batch."""
    organisation = require_organisation(organisation)
    wanted = [d for d in digests if d]
    if not wanted:
        return set()
    return set(
        UndeliverableAddress.objects.for_organisation(organisation)
        .filter(digest__in=wanted)
        .values_list("digest", flat=True)
    )


def contact_address_undeliverable(*, contact: Contact, channel: str) -> bool:
    digest = contact.email_bidx if channel == Channel.EMAIL else contact.phone_bidx
    if not digest:
        return False
    return bool(undeliverable_digests(organisation=contact.organisation, digests=[digest]))


def inbound_list(*, organisation: Organisation, contact_id: int | None = None) -> Any:
    rows = InboundMessage.objects.for_organisation(organisation)
    if contact_id is not None:
        rows = rows.filter(contact_id=contact_id)
    return rows.order_by("-received_at", "-pk")
