"""Every write of the messaging app that is not dispatch itself: templates, enqueue, cancel.

``message_enqueue`` is the one way a message comes to exist (MSG-6, MSG-9): it renders the text
(a missing variable fails here, before anything is queued, MSG-3), asks ``sending_decide``
(``eligibility_decide``, CON-3..CON-7, plus hard-bounced addresses; dispatch asks again,
MSG-5), adds the opt-out line or unsubscribe link and headers to marketing (MSG-8), writes
the row with its ``queued`` event and, on commit, wakes a dispatch worker on the kind's own
queue.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import unescape
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import JSONField
from django.utils import timezone
from django.utils.html import escape

from carely.audit.services import audit_record
from carely.orgs.models import Organisation, User
from carely.orgs.scoping import require_organisation
from carely.privacy.crypto import encrypt, keyring
from consent.eligibility import Decision, Reason, eligibility_decide
from consent.links import UnsubscribeLinks
from consent.selectors import values_in
from contacts.models import Contact
from contacts.selectors import ContactValues, contact_values
from messaging import templating
from messaging.models import (
    HANDED_OVER,
    WAITING,
    Channel,
    EventSource,
    Kind,
    Message,
    MessageEvent,
    MessageTemplate,
    ProviderAccount,
    Status,
    WhatsAppSession,
    queue_for,
)
from messaging.receipts import UndeliverableAddress
from messaging.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    MAX_PARTS,
    UCS2_PART,
    UCS2_SINGLE,
    sms_encoding,
    transliterate,
)

logger = logging.getLogger("carely.messaging")


class RefusalReason:
    """Refusals messaging adds to the eligibility decision's (``consent.eligibility.Reason``)."""

    WHATSAPP_SESSION_CLOSED = "whatsapp_session_closed"
    # MSG-4: the contact already had the organisation's cap of marketing messages in its window.
    FREQUENCY_CAP = "frequency_cap"


class MessageRefused(Exception):
    """The eligibility decision (or the WhatsApp session window) says no; ``reasons`` lists
    every stable code, for a 422 problem body or a report."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("message refused: " + ", ".join(self.reasons))


class MessageInvalid(ValueError):
    """The request itself is wrong (template, variables, text, length); ``problems`` names each
    one, with what to do."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


class MessageNotCancellable(ValueError):
    pass


WHATSAPP_SESSION = dt.timedelta(hours=24)

# The opt-out line every marketing SMS ends with (MSG-8), in the contact's language. A fixed
# table rather than gettext: it must exist for every language a clinic writes in, and a missing
# catalogue must not silently fall back to a line the patient cannot read. Every line is GSM-7
# (no č/š/ž): the line alone must never switch a message to UCS-2 and double its parts.
SMS_OPT_OUT = {
    "sl": "Odjava: {url}",
    "en": "Unsubscribe: {url}",
    "de": "Abmelden: {url}",
    "hr": "Odjava: {url}",
    "it": "Disiscriviti: {url}",
}
# The same with the STOP reply (CON-2), for senders a reply can reach. The keywords are the
# platform's own (MESSAGING_STOP_KEYWORDS), which no clinic can switch off.
SMS_OPT_OUT_REPLY = {
    "sl": "Odjava: odgovorite ODJAVA ali {url}",
    "en": "Reply STOP or visit {url} to opt out",
    "de": "Abmelden: Antwort STOP oder {url}",
    "hr": "Odjava: odgovorite ODJAVA ili {url}",
    "it": "Disiscriviti: rispondi STOP o {url}",
}
# An alphanumeric sender id ("Carely") cannot receive replies; a number (long code or short
# code) can, and its replies reach the inbound webhook.
_REPLYABLE_SENDER = re.compile(r"\+?[0-9]{3,15}")


def sms_replies_reach_us(account: ProviderAccount | None, channel: str) -> bool:
    """Whether a STOP reply to this message can arrive at all: always on WhatsApp; on SMS only
    from a numeric sender. Telling a patient to reply STOP to a sender id that cannot take
    replies would make them believe they opted out when nothing happened."""
    if channel == Channel.WHATSAPP:
        return True
    sender = (account.sms_sender if account else "") or settings.MESSAGING_SMS_SENDER or ""
    return bool(_REPLYABLE_SENDER.fullmatch(sender.replace(" ", "")))


def sms_opt_out_line(*, language: str, url: str, replies: bool) -> str:
    """The line a marketing SMS or WhatsApp text ends with; enqueue and the template preview
    both use it, so the preview's part count is what the clinic will pay for."""
    return _in_language(SMS_OPT_OUT_REPLY if replies else SMS_OPT_OUT, language).format(url=url)


EMAIL_FOOTER = {
    "sl": "Ne želite več prejemati teh sporočil? Odjava: {url}",
    "en": "Don't want these messages any more? Unsubscribe: {url}",
    "de": "Sie möchten diese Nachrichten nicht mehr erhalten? Abmelden: {url}",
    "hr": "Ne želite više primati ove poruke? Odjava: {url}",
    "it": "Non vuoi più ricevere questi messaggi? Disiscriviti: {url}",
}
EMAIL_FOOTER_LINK = {
    "sl": "Odjava",
    "en": "Unsubscribe",
    "de": "Abmelden",
    "hr": "Odjava",
    "it": "Disiscriviti",
}


# --- provider accounts ---------------------------------------------------------------------------
def provider_account_for(organisation: Organisation) -> ProviderAccount:
    """The organisation's provider account row, created on first use (its webhook token)."""
    organisation = require_organisation(organisation)
    account, _ = ProviderAccount.objects.get_or_create(organisation=organisation)
    return account


# --- templates -----------------------------------------------------------------------------------
def template_save(
    *,
    organisation: Organisation,
    name: str,
    kind: str,
    channel: str,
    language: str,
    body: str,
    subject: str = "",
    html_body: str = "",
    variables: Iterable[str] = (),
    whatsapp_template_name: str = "",
    created_by: User | None = None,
) -> MessageTemplate:
    """Write a new version of the template ``name`` for ``channel`` and ``language``.

    A version is never changed once written, so a message always shows the text it was made
    from; the previous version is retired. Raises ``MessageInvalid`` naming every problem
    (unknown placeholders with a suggestion, a subject missing on e-mail, ...).
    """
    organisation = require_organisation(organisation)
    problems: list[str] = []
    if kind not in Kind.values:
        problems.append(f"kind must be one of {', '.join(Kind.values)}, not {kind!r}.")
    if channel not in Channel.values:
        problems.append(f"channel must be one of {', '.join(Channel.values)}, not {channel!r}.")
    if not name.strip():
        problems.append("Give the template a name.")
    if not body.strip():
        problems.append("The body is empty.")
    if channel == Channel.EMAIL and not subject.strip():
        problems.append("An e-mail template needs a subject.")
    if channel != Channel.EMAIL and (subject or html_body):
        problems.append("Only e-mail templates have a subject or an HTML body.")
    if whatsapp_template_name and channel != Channel.WHATSAPP:
        problems.append("whatsapp_template_name belongs to WhatsApp templates only.")
    declared = list(dict.fromkeys(v.strip() for v in variables))
    bad_names = [v for v in declared if not templating._NAME.fullmatch(v)]
    if bad_names:
        problems.append(
            f"Variable names {', '.join(map(repr, bad_names))} are not valid: use lower-case "
            "letters, digits and underscores, starting with a letter."
        )
    try:
        templating.template_check(
            [subject, body, html_body], marketing=kind == Kind.MARKETING, declared=declared
        )
    except templating.TemplateError as exc:
        problems.extend(exc.problems)
    if problems:
        raise MessageInvalid(problems)
    now = timezone.now()
    with transaction.atomic():
        versions = MessageTemplate.objects.for_organisation(organisation).filter(
            name=name, channel=channel, language=language
        )
        latest = versions.select_for_update().order_by("-version").first()
        template = MessageTemplate.objects.create(
            organisation=organisation,
            name=name,
            kind=kind,
            channel=channel,
            language=language,
            version=(latest.version + 1) if latest else 1,
            subject=subject,
            body=body,
            html_body=html_body,
            variables=declared,
            whatsapp_template_name=whatsapp_template_name,
            created_by=created_by,
            created_at=now,
        )
        versions.filter(retired_at__isnull=True).exclude(pk=template.pk).update(retired_at=now)
        audit_record(
            action="message_template.saved",
            organisation=organisation,
            object_type="message_template",
            object_id=template.pk,
            details={"version": template.version, "channel": channel, "kind": kind},
        )
    return template


# --- enqueue -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    html_body: str
    extras: dict[str, Any]
    parts: int


def _language(contact: Contact | ContactValues, organisation: Organisation) -> str:
    return (contact.preferred_language or organisation.default_language or "en")[:2].lower()


def _in_language(table: Mapping[str, str], language: str) -> str:
    return table.get(language) or table["en"]


def _render(
    *,
    organisation: Organisation,
    account: ProviderAccount,
    contact: Contact,
    channel: str,
    kind: str,
    purpose: str,
    template: MessageTemplate | None,
    variables: Mapping[str, Any],
    text: str | None,
    track_links: LinkTracker | None = None,
    subject: str = "",
) -> Rendered:
    """One contact's message (``message_enqueue``); a batch keeps one ``_Renderer``."""
    return _Renderer(
        organisation=organisation,
        account=account,
        channel=channel,
        kind=kind,
        purpose=purpose,
        template=template,
        text=text,
        track_links=track_links,
        subject=subject,
    ).render(contact, variables)


# (contact, url) -> the URL to send instead (a campaign's click-tracking redirect).
LinkTracker = Callable[[Contact | ContactValues, str], str]

# A link in plain text ends at white space, a quote or an angle bracket; punctuation that ends a
# sentence right after it is not part of it.
_TEXT_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}"
_HREF = re.compile(r"""(\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_HTTP = re.compile(r"https?://", re.IGNORECASE)
_GSM7_ANY = GSM7_BASIC | GSM7_EXTENSION


def _text_links_tracked(
    text: str, contact: Contact | ContactValues, keep: str, track: LinkTracker
) -> str:
    def swap(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(_URL_TRAILING)
        if url == keep or not url.partition("//")[2]:  # the unsubscribe link, or no host
            return found
        return track(contact, url) + found[len(url) :]

    return _TEXT_URL.sub(swap, text)


def _html_links_tracked(
    html: str, contact: Contact | ContactValues, keep: str, track: LinkTracker
) -> str:
    def swap(match: re.Match[str]) -> str:
        url = unescape(match.group(3).strip())
        if url == keep or not _HTTP.match(url):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{escape(track(contact, url))}{match.group(2)}"

    return _HREF.sub(swap, html)


def _sms_parts_plain(body: str) -> int | None:
    """The part count of ``sms_encoding`` for the common texts (every character in GSM-7's basic
    table, or UCS-2 without surrogate pairs), where every character is one unit and the count is
    arithmetic; None for the rest (extension characters, emoji), which ``sms_encoding`` counts."""
    chars = set(body)
    length = len(body)
    if chars <= GSM7_BASIC:
        single, per_part = GSM7_SINGLE, GSM7_PART
    elif not chars <= _GSM7_ANY and max(chars) <= "\uffff":
        single, per_part = UCS2_SINGLE, UCS2_PART
    else:
        return None
    if length <= single:
        return 1 if length else 0
    return -(-length // per_part)


class _Renderer:
    """Renders one request (template or text, channel, kind, purpose) for one contact after
    another: the template is parsed once, the unsubscribe URL resolved once and its tokens
    signed with one derived key (``UnsubscribeLinks``), the sender's reply capability looked
    up once. ``message_enqueue`` renders its one contact with it too, so one message and a
    campaign's thousands are made by the same code.

    ``track_links`` (marketing only): every http(s) link of the rendered body, and every href
    of the HTML body, except the unsubscribe link, becomes ``track_links(contact, url)``,
    before the opt-out line is added and before SMS parts are counted, so the count is what
    will be paid. It is called for each link found, repeated links included."""

    def __init__(
        self,
        *,
        organisation: Organisation,
        account: ProviderAccount,
        channel: str,
        kind: str,
        purpose: str,
        template: MessageTemplate | None,
        text: str | None,
        track_links: LinkTracker | None = None,
        subject: str = "",
    ) -> None:
        self.organisation = organisation
        self.subject = subject
        self.account = account
        self.channel = channel
        self.marketing = kind == Kind.MARKETING
        self.template = template
        self.text = text
        self.track_links = track_links if self.marketing else None
        self.links = UnsubscribeLinks(purpose) if self.marketing else None
        self.problems: list[str] = []
        self.parsed: list[templating.Parsed] = []
        self.used: set[str] = set()
        if template is not None:
            try:
                self.parsed = [templating.parse(t) for t in (template.subject, template.body)]
                self.parsed.append(templating.parse(template.html_body))
            except templating.TemplateError as exc:
                self.problems = exc.problems
            self.used = {n for p in self.parsed for n in p.names}
        self.replies = (
            self.marketing and channel != Channel.EMAIL and sms_replies_reach_us(account, channel)
        )
        self.default_language = organisation.default_language

    def contact_fields(self) -> set[str]:
        """The contact's names that rendering reads (the template's placeholders)."""
        return {"first_name", "last_name"} & self.used

    def render(self, contact: Contact | ContactValues, variables: Mapping[str, Any]) -> Rendered:
        organisation, channel, template = self.organisation, self.channel, self.template
        marketing = self.marketing
        given = {k: "" if v is None else str(v) for k, v in variables.items()}
        values: dict[str, str] = {
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "organisation_name": organisation.name,
            **given,
        }
        token = url = ""
        if self.links is not None:
            token = self.links.token(contact)
            url = self.links.url(token)
            values["unsubscribe_url"] = url
        extras: dict[str, Any] = {}
        if template is not None:
            if self.problems:
                raise MessageInvalid(self.problems)
            try:
                templating.values_check(given, self.used)
                subject_p, body_p, html_p = self.parsed
                subject = templating.render(subject_p, values)
                body = templating.render(body_p, values)
                html_body = templating.render(html_p, values, html=True)
            except templating.TemplateError as exc:
                raise MessageInvalid(exc.problems) from exc
            if template.whatsapp_template_name:
                # Meta's templates take positional placeholders: ours in order of first use.
                extras["whatsapp_template"] = {
                    "name": template.whatsapp_template_name,
                    "language": template.language,
                    "placeholders": [values[n] for n in body_p.names],
                }
            used = self.used
        else:
            if given:
                raise MessageInvalid(["variables need a template; a free text is sent as written."])
            subject, body, html_body = self.subject, (self.text or ""), ""
            used = set()
        if not body.strip():
            raise MessageInvalid(["The message is empty: give a template or a text."])
        if self.track_links is not None:
            body = _text_links_tracked(body, contact, url, self.track_links)
            if html_body:
                html_body = _html_links_tracked(html_body, contact, url, self.track_links)

        if marketing and "unsubscribe_url" not in used:
            language = (contact.preferred_language or self.default_language or "en")[:2].lower()
            if channel == Channel.EMAIL:
                footer = _in_language(EMAIL_FOOTER, language).format(url=url)
                body = f"{body}\n\n--\n{footer}"
                if html_body:
                    label = _in_language(EMAIL_FOOTER_LINK, language)
                    html_body = f'{html_body}\n<p><a href="{url}">{label}</a></p>'
            else:
                line = sms_opt_out_line(language=language, url=url, replies=self.replies)
                body = f"{body}\n{line}"
        if marketing and channel == Channel.EMAIL:
            assert self.links is not None
            extras["headers"] = self.links.headers(token)

        parts = 1
        if channel == Channel.SMS:
            if self.account.sms_transliterate:
                body = transliterate(body)
            plain = _sms_parts_plain(body)
            if plain is None or plain > MAX_PARTS:
                encoding = sms_encoding(body)
                if encoding.too_long:
                    raise MessageInvalid(
                        [
                            f"The SMS would be {encoding.parts} parts ({encoding.encoding}); the "
                            f"limit is {MAX_PARTS}. Shorten the text"
                            + (
                                " or switch on transliteration (č, š, ž force UCS-2)."
                                if encoding.non_gsm
                                else "."
                            )
                        ]
                    )
                plain = encoding.parts
            parts = plain
        elif channel == Channel.EMAIL and not subject:
            raise MessageInvalid(["An e-mail needs a subject: send it with an e-mail template."])
        return Rendered(subject, body, html_body, extras, parts)


# --- the sending decision ------------------------------------------------------------------------
def sending_decide(
    *,
    organisation: Organisation,
    contact_ids: Iterable[int],
    kind: str,
    channel: str,
    purpose: str | None,
    now: dt.datetime,
) -> dict[int, Decision]:
    """``eligibility_decide`` plus the one thing only messaging knows: the provider reported the
    contact's current address on this channel permanently undeliverable (an SES hard bounce,
    ``UndeliverableAddress``). Such a contact is refused with ``no_address``, as one without an
    address is: sending again only hurts the sender's reputation for every clinic.

    Enqueue and dispatch both decide here, so they cannot disagree. One query more than the
    eligibility decision's, whatever the batch size. Matched by the contact's own blind index,
    so a corrected address is eligible again at once. Raises what ``eligibility_decide`` raises.
    """
    decisions = eligibility_decide(
        organisation=organisation,
        contact_ids=contact_ids,
        kind=kind,
        channel=channel,
        purpose=purpose,
        now=now,
    )
    candidates = [
        pk
        for pk, decision in decisions.items()
        if not {Reason.ERASED, Reason.NO_ADDRESS} & set(decision.reasons)
    ]
    if not candidates:
        return decisions
    email = channel == Channel.EMAIL
    # The blind index kinds the bounce was keyed by: WhatsApp reaches the phone number.
    bounced = UndeliverableAddress.objects.for_organisation(organisation).filter(
        kind="email" if email else "phone"
    )
    column = "email_bidx" if email else "phone_bidx"
    undeliverable = (
        Contact.objects.for_organisation(organisation)
        .filter(values_in(Contact, "id", candidates))
        .filter(**{f"{column}__in": bounced.values("digest")})
        .values_list("pk", flat=True)
    )
    for pk in undeliverable:
        decision = decisions[pk]
        decisions[pk] = Decision(pk, False, None, reasons=[*decision.reasons, Reason.NO_ADDRESS])
    return decisions


def whatsapp_session_open(
    *, organisation: Organisation, contact_ids: Iterable[int], now: dt.datetime | None = None
) -> set[int]:
    """The contacts who wrote to the organisation on WhatsApp in the last 24 hours."""
    since = (now or timezone.now()) - WHATSAPP_SESSION
    return set(
        WhatsAppSession.objects.filter(
            organisation=organisation, contact_id__in=list(contact_ids), last_inbound_at__gte=since
        ).values_list("contact_id", flat=True)
    )


def whatsapp_inbound_note(*, organisation: Organisation, contact: Contact, at: dt.datetime) -> None:
    """Record that ``contact`` wrote on WhatsApp at ``at`` (for the inbound webhook): it opens
    the 24-hour window in which free-form text may be sent."""
    organisation = require_organisation(organisation)
    with transaction.atomic():
        session, created = WhatsAppSession.objects.select_for_update().get_or_create(
            organisation=organisation, contact=contact, defaults={"last_inbound_at": at}
        )
        if not created and at > session.last_inbound_at:
            session.last_inbound_at = at
            session.save(update_fields=["last_inbound_at"])


def needs_session(channel: str, extras: Mapping[str, Any]) -> bool:
    return channel == Channel.WHATSAPP and "whatsapp_template" not in extras


def _needs_session_before_render(channel: str, template: MessageTemplate | None) -> bool:
    """``needs_session`` known before rendering: the rendering puts ``whatsapp_template`` in
    the extras exactly when the template names a WhatsApp template."""
    return channel == Channel.WHATSAPP and not (template and template.whatsapp_template_name)


def _address(contact: Contact, channel: str) -> str:
    return contact.email if channel == Channel.EMAIL else contact.phone


def dispatch_kick_on_commit(kind: str) -> None:
    """Wake a dispatch worker on the kind's queue once this transaction commits.

    One wake-up per queue per transaction is enough (a worker drains every due row), so a
    campaign that enqueues thousands of rows in one transaction sends one task, not thousands.
    """
    queue = queue_for(kind)
    pending = getattr(connection, "run_on_commit", [])
    if any(getattr(f, "messaging_queue", None) == queue for _sids, f, *_ in pending):
        return

    def kick() -> None:
        from messaging.tasks import messages_dispatch

        try:
            messages_dispatch.apply_async(kwargs={"queue": queue}, queue=queue)
        except Exception:  # the broker's errors are many and library-specific
            # The rows are committed; messages_dispatch_sweep wakes the queue within 15 s.
            logger.warning("dispatch wake-up for %s not sent; the sweep will", queue, exc_info=True)

    kick.messaging_queue = queue  # type: ignore[attr-defined]
    transaction.on_commit(kick)


def message_enqueue(
    *,
    organisation: Organisation,
    contact: Contact,
    channel: str,
    kind: str,
    purpose: str,
    template: MessageTemplate | None = None,
    variables: Mapping[str, Any] | None = None,
    text: str | None = None,
    subject: str = "",
    send_at: dt.datetime | None = None,
    dedupe_key: str,
    created_by: User | None = None,
    api_key: Any = None,
    respect_quiet_hours: bool | None = None,
    campaign_id: int | None = None,
) -> Message:
    """Queue one message to ``contact`` and return it (MSG-6, MSG-9).

    - A second call with the same ``dedupe_key`` for the same contact and channel returns the
      first message and changes nothing.
    - Decides eligibility now (and dispatch decides again): ``MessageRefused(reasons)``.
    - Then renders: ``MessageInvalid`` names every missing or unknown variable, an e-mail
      without a subject, an SMS over 25 parts. A free ``text`` sent by e-mail takes its
      ``subject``.
    - Marketing always respects quiet hours; a transactional message only when asked to.
    """
    organisation = require_organisation(organisation)
    if contact.organisation_id != organisation.pk:
        raise MessageInvalid(["The contact belongs to another organisation."])
    problems = _check_request(channel, kind, purpose, template, text, dedupe_key)
    if problems:
        raise MessageInvalid(problems)
    existing = _existing(organisation, dedupe_key, contact, channel)
    if existing is not None:
        return existing
    assert template is None or template.organisation_id == organisation.pk
    account = provider_account_for(organisation)
    now = timezone.now()
    # The decision before the rendering, as for a batch (messages_prepare_bulk): a contact who
    # may not be sent to is refused whatever the text, and a batch renders no refused contact.
    decision = sending_decide(
        organisation=organisation,
        contact_ids=[contact.pk],
        kind=kind,
        channel=channel,
        purpose=purpose,
        now=now,
    )[contact.pk]
    reasons = list(decision.reasons)
    if _needs_session_before_render(channel, template) and not whatsapp_session_open(
        organisation=organisation, contact_ids=[contact.pk], now=now
    ):
        reasons.append(RefusalReason.WHATSAPP_SESSION_CLOSED)
    if reasons:
        raise MessageRefused(reasons)  # every reason that applies, as eligibility lists them
    rendered = _render(
        organisation=organisation,
        account=account,
        contact=contact,
        channel=channel,
        kind=kind,
        purpose=purpose,
        template=template,
        variables=variables or {},
        text=text,
        subject=subject,
    )
    message = _message_row(
        organisation=organisation,
        contact=contact,
        channel=channel,
        kind=kind,
        purpose=purpose,
        template=template,
        rendered=rendered,
        decision=decision,
        dedupe_key=dedupe_key,
        due_at=send_at or now,
        respect_quiet_hours=kind == Kind.MARKETING or bool(respect_quiet_hours),
        created_by=created_by,
        api_key=api_key,
        campaign_id=campaign_id,
        now=now,
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
            MessageEvent.objects.create(
                organisation=organisation,
                message=message,
                kind=Status.QUEUED,
                at=now,
                recorded_at=now,
                source=_source(created_by, api_key),
                detail={"legal_basis": decision.legal_basis or "", "due_at": _iso(message.due_at)},
            )
            dispatch_kick_on_commit(kind)
    except IntegrityError:
        # Lost a race with the same request: theirs is the message.
        existing = _existing(organisation, dedupe_key, contact, channel)
        if existing is None:
            raise
        return existing
    return message


def _check_request(
    channel: str,
    kind: str,
    purpose: str,
    template: MessageTemplate | None,
    text: str | None,
    dedupe_key: str,
) -> list[str]:
    problems: list[str] = []
    if channel not in Channel.values:
        problems.append(f"channel must be one of {', '.join(Channel.values)}, not {channel!r}.")
    if kind not in Kind.values:
        problems.append(f"kind must be one of {', '.join(Kind.values)}, not {kind!r}.")
    if not purpose:
        problems.append("Give the purpose (a slug such as appointment_reminders).")
    if not dedupe_key or len(dedupe_key) > 300:
        problems.append("dedupe_key is required (at most 300 characters).")
    if (template is None) == (text is None):
        problems.append("Give either a template or a text, not both and not neither.")
    if template is not None:
        if template.retired_at is not None:
            problems.append(
                f"Template {template.name!r} v{template.version} is retired; use the current "
                "version."
            )
        if template.channel != channel:
            problems.append(f"Template {template.name!r} is for {template.channel}, not {channel}.")
        if template.kind != kind:
            problems.append(f"Template {template.name!r} is {template.kind}, not {kind}.")
    return problems


def _existing(
    organisation: Organisation, dedupe_key: str, contact: Contact, channel: str
) -> Message | None:
    return (
        Message.objects.for_organisation(organisation)
        .filter(dedupe_key=dedupe_key, contact=contact, channel=channel)
        .first()
    )


def _source(created_by: Any, api_key: Any) -> str:
    if api_key is not None:
        return EventSource.API
    if created_by is not None:
        return EventSource.STAFF
    return EventSource.ENQUEUE


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _message_row(
    *,
    organisation: Organisation,
    contact: Contact,
    channel: str,
    kind: str,
    purpose: str,
    template: MessageTemplate | None,
    rendered: Rendered,
    decision: Decision,
    dedupe_key: str,
    due_at: dt.datetime,
    respect_quiet_hours: bool,
    created_by: User | None,
    api_key: Any,
    campaign_id: int | None,
    now: dt.datetime,
) -> Message:
    return Message(
        organisation=organisation,
        contact=contact,
        channel=channel,
        kind=kind,
        purpose=purpose,
        template=template,
        template_version=template.version if template else None,
        subject=rendered.subject,
        body=rendered.body,
        html_body=rendered.html_body,
        extras=json.dumps(rendered.extras) if rendered.extras else "",
        to_address=_address(contact, channel),
        legal_basis=decision.legal_basis or "",
        consent_entry_id=decision.consent_entry_id,
        dedupe_key=dedupe_key,
        due_at=due_at,
        respect_quiet_hours=respect_quiet_hours,
        parts_estimated=rendered.parts,
        campaign_id=campaign_id,
        created_at=now,
        created_by=created_by,
        api_key=api_key,
    )


@dataclass
class BulkEnqueueResult:
    created: int
    already_queued: int
    refused: dict[int, list[str]]
    invalid: dict[int, list[str]]


def messages_enqueue_bulk(
    *,
    organisation: Organisation,
    contacts: Sequence[Contact],
    channel: str,
    kind: str,
    purpose: str,
    template: MessageTemplate | None = None,
    variables: Mapping[int, Mapping[str, Any]] | None = None,
    text: str | None = None,
    send_at: dt.datetime | None = None,
    dedupe_key: str,
    created_by: User | None = None,
    campaign_id: int | None = None,
    track_links: LinkTracker | None = None,
) -> BulkEnqueueResult:
    """``message_enqueue`` for many contacts at once (a campaign's batch): one eligibility
    decision for the batch, one insert, one wake-up. Refused and invalid contacts are reported
    per contact id instead of raised; rows already queued under ``dedupe_key`` are skipped.
    ``messages_prepare_bulk`` then ``messages_insert_prepared``; see the first for the details."""
    return messages_insert_prepared(
        messages_prepare_bulk(
            organisation=organisation,
            contacts=contacts,
            channel=channel,
            kind=kind,
            purpose=purpose,
            template=template,
            variables=variables,
            text=text,
            send_at=send_at,
            dedupe_key=dedupe_key,
            created_by=created_by,
            campaign_id=campaign_id,
            track_links=track_links,
        )
    )


@dataclass
class PreparedEnqueue:
    organisation_id: int
    kind: str
    rows: list[_Row]
    common: dict[str, Any]
    now: dt.datetime
    source: str
    result: BulkEnqueueResult


def messages_prepare_bulk(
    *,
    organisation: Organisation,
    contacts: Sequence[Contact | ContactValues],
    channel: str,
    kind: str,
    purpose: str,
    template: MessageTemplate | None = None,
    variables: Mapping[int, Mapping[str, Any]] | None = None,
    text: str | None = None,
    send_at: dt.datetime | None = None,
    dedupe_key: str,
    created_by: User | None = None,
    campaign_id: int | None = None,
    track_links: LinkTracker | None = None,
    load_values: bool = False,
    queued_already: Collection[int] | None = None,
) -> PreparedEnqueue:
    """``messages_enqueue_bulk`` without the write: the eligibility decision and the rendered rows
    of a batch, nothing written (the campaign materialiser prepares the next batch in another
    process while this one is written). Picklable.

    ``message_enqueue`` for many contacts at once (a campaign's batch): one eligibility
    decision for the batch, one insert, one wake-up. Refused and invalid contacts are reported
    per contact id instead of raised; rows already queued under ``dedupe_key`` are skipped.

    ``track_links(contact, url)``: for marketing, the URL each link of the text is replaced by
    (the click-tracking redirect); see ``_Renderer``.

    ``load_values``: ``contacts`` carry only their id and language (``ContactValues``); after
    the decision, the names the template uses and the channel's address are loaded for the
    contacts that will be rendered, and for no other (a refused contact is not decrypted).
    A refused contact is not rendered in either case, so it is reported refused, not invalid.

    ``queued_already``: the contacts the caller found with a message under ``dedupe_key`` (on
    any channel) and left out, instead of looking them up again here.

    Made for about 2,000 contacts a call (bench/messaging_enqueue.py): the template is parsed
    once, unsubscribe tokens are signed with one derived key, and on PostgreSQL the rows and
    their ``queued`` events go in by ``COPY`` with ids drawn from the sequence first, without
    building model instances."""
    organisation = require_organisation(organisation)
    problems = _check_request(channel, kind, purpose, template, text, dedupe_key)
    if problems:
        raise MessageInvalid(problems)
    account = provider_account_for(organisation)
    now = timezone.now()
    ids = [c.pk for c in contacts]
    seen = (
        set(ids).intersection(queued_already)
        if queued_already is not None
        else set(
            Message.objects.for_organisation(organisation)
            .filter(dedupe_key=dedupe_key, channel=channel)
            .filter(values_in(Message, "contact", ids))
            .values_list("contact_id", flat=True)
        )
    )
    decisions = sending_decide(
        organisation=organisation,
        contact_ids=ids,
        kind=kind,
        channel=channel,
        purpose=purpose,
        now=now,
    )
    # Only WhatsApp free text needs the session window (needs_session).
    session_needed = _needs_session_before_render(channel, template)
    sessions = (
        whatsapp_session_open(organisation=organisation, contact_ids=ids, now=now)
        if session_needed
        else set()
    )
    renderer = _Renderer(
        organisation=organisation,
        account=account,
        channel=channel,
        kind=kind,
        purpose=purpose,
        template=template,
        text=text,
        track_links=track_links,
    )
    result = BulkEnqueueResult(0, len(seen), {}, {})
    email = channel == Channel.EMAIL
    # Refusals before any rendering, each with every reason that applies.
    refusals: dict[int, list[str]] = {}
    for contact in contacts:
        reasons = list(decisions[contact.pk].reasons)
        if session_needed and contact.pk not in sessions:
            reasons.append(RefusalReason.WHATSAPP_SESSION_CLOSED)
        if reasons and contact.pk not in seen:
            refusals[contact.pk] = reasons
    loaded: Mapping[int, ContactValues] | None = None
    if load_values:
        address = "email" if email else "phone"
        loaded = contact_values(
            organisation=organisation,
            ids=[c.pk for c in contacts if c.pk not in seen and c.pk not in refusals],
            fields={*renderer.contact_fields(), address, "preferred_language"},
        )

    def prepared() -> Iterator[_Row]:
        # Refusals and invalid contacts are recorded in ``result`` as they are met.
        for contact in contacts:
            if contact.pk in seen:
                continue
            decision = decisions[contact.pk]
            if contact.pk in refusals:
                result.refused[contact.pk] = refusals[contact.pk]
                continue
            if loaded is not None:
                found = loaded.get(contact.pk)
                if found is None:  # deleted since the batch was read
                    result.invalid[contact.pk] = ["The contact no longer exists."]
                    continue
                contact = found
            try:
                rendered = renderer.render(contact, (variables or {}).get(contact.pk, {}))
            except MessageInvalid as exc:
                result.invalid[contact.pk] = exc.problems
                continue
            yield _Row(
                contact.pk,
                rendered.subject,
                rendered.body,
                rendered.html_body,
                json.dumps(rendered.extras) if rendered.extras else "",
                contact.email if email else contact.phone,
                decision.legal_basis or "",
                decision.consent_entry_id,
                rendered.parts,
            )

    common = {
        "organisation_id": organisation.pk,
        "channel": channel,
        "kind": kind,
        "purpose": purpose,
        "template_id": template.pk if template else None,
        "template_version": template.version if template else None,
        "dedupe_key": dedupe_key,
        "due_at": send_at or now,
        "respect_quiet_hours": kind == Kind.MARKETING,
        "campaign_id": campaign_id,
        "created_at": now,
        "created_by_id": created_by.pk if created_by else None,
        "api_key_id": None,
    }
    source = EventSource.STAFF if created_by else EventSource.ENQUEUE
    # Every row is rendered before the insert starts: rendering runs the caller's track_links
    # (which may query or write, as the campaigns' does for a new link) and may load a contact's
    # deferred field, and no other statement can run on the connection while a COPY is open.
    rows = list(prepared())
    return PreparedEnqueue(organisation.pk, kind, rows, common, now, source, result)


def messages_insert_prepared(
    prepared: PreparedEnqueue, *, skip_contacts: Collection[int] = ()
) -> BulkEnqueueResult:
    """Write what ``messages_prepare_bulk`` prepared (the rows and their ``queued`` events, one
    wake-up on commit), leaving out ``skip_contacts`` (counted as already queued). Returns the
    prepared result with ``created`` filled in."""
    result = prepared.result
    rows = [r for r in prepared.rows if r.contact_id not in skip_contacts]
    result.already_queued += len(prepared.rows) - len(rows)
    created: list[tuple[int, str]] = []
    if rows:
        organisation = Organisation.objects.get(pk=prepared.organisation_id)
        with transaction.atomic():
            created = _messages_insert(
                organisation, rows, prepared.common, prepared.now, prepared.source
            )
            if created:
                dispatch_kick_on_commit(prepared.kind)
    result.created = len(created)
    result.already_queued += len(rows) - len(created)
    return result


class _Row(NamedTuple):
    """What differs between the messages of one bulk enqueue."""

    contact_id: int
    subject: str
    body: str
    html_body: str
    extras: str
    to_address: str
    legal_basis: str
    consent_entry_id: int | None
    parts_estimated: int


def _messages_insert(
    organisation: Organisation,
    rows: list[_Row],
    common: dict[str, Any],
    now: dt.datetime,
    source: str,
) -> list[tuple[int, str]]:
    """Insert the messages and one ``queued`` event each; ``[(id, legal basis)]`` of the rows
    this call created. Runs inside the caller's transaction.

    PostgreSQL: ``COPY`` (ids from the sequence first) in a savepoint. ``COPY`` has no ``ON
    CONFLICT``: when a concurrent run of the same batch inserted some rows first, the unique
    constraint stops it, the savepoint is undone and the ORM path below inserts every row but
    those."""
    connection = connections[Message.objects.db]
    if connection.vendor == "postgresql":
        import psycopg

        try:
            with transaction.atomic():
                created = _messages_copy(connection, rows, common)
        # COPY is psycopg's own call, so its error is not wrapped in Django's.
        except (IntegrityError, psycopg.IntegrityError):
            pass
        else:
            _queued_events_copy(connection, organisation, created, common["due_at"], now, source)
            return created
    return _messages_insert_orm(organisation, rows, common, now, source)


# COPY's text format: these four characters are the only ones a value must escape.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_CHUNK = 250  # rows per write: the server starts on the first rows while we go on


def _copy_text(value: Any) -> str:
    """One value in COPY's text format; only the types a message row holds."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        assert value.tzinfo is not None, "naive datetime in a COPY row"
        return value.isoformat()
    if isinstance(value, str):
        # str.translate with a mapping is slow, and most values have none of the four.
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_COPY_ESCAPES)
        return value
    raise TypeError(f"_copy_text: no COPY text form for {type(value).__name__}")


def _messages_copy(
    connection: Any, rows: list[_Row], common: dict[str, Any]
) -> list[tuple[int, str]]:
    """COPY the rows into messaging_message; ``[(id, legal basis)]`` of each.

    Each line is the row's own columns (id, our_id, then ``_Row``'s, encrypted where the field
    is) followed by the batch's constant columns, formatted once: the model's defaults and
    ``common``. A field with a per-row default other than our_id stops here (AssertionError),
    rather than one value being copied into every row."""
    meta = Message._meta
    pk: Any = meta.pk
    own = ["our_id", *_Row._fields]
    fields: dict[str, Any] = {f.attname: f for f in meta.concrete_fields if not f.primary_key}
    constant: list[str] = []
    for name, f in fields.items():
        if name in own:
            continue
        if name in common:
            value = common[name]
        else:
            assert not (f.has_default() and callable(f.default)) or f.default in (list, dict), (
                f"messaging_message.{f.column} has a per-row default: give it in _Row"
            )
            value = f.get_default()
        if isinstance(f, JSONField):
            value = json.dumps(value)
        elif value is not None and not isinstance(value, dt.datetime):
            value = f.get_db_prep_save(value, connection)
        constant.append(_copy_text(value))
    suffix = "\t".join(constant) + "\n"
    new_our_id = fields["our_id"].default
    ring = keyring()
    # Per position of _Row: the field's associated data when it is encrypted, else None.
    sealed = [
        fields[name].aad() if getattr(fields[name], "encrypted", False) else None
        for name in _Row._fields
    ]
    quote = connection.ops.quote_name
    names = [pk.column, *own, *(n for n in fields if n not in own)]
    columns = ", ".join(quote(fields[n].column if n in fields else n) for n in names)
    created: list[tuple[int, str]] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(rows)],
        )
        ids = [r[0] for r in cursor.fetchall()]
        with cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            lines: list[str] = []
            for pk_value, row in zip(ids, rows, strict=True):
                # ADR 0004: empty stays empty. A ciphertext (e1$kid$base64url) needs no escaping.
                own_text = "\t".join(
                    _copy_text(value)
                    if aad is None
                    else (encrypt(str(value), aad, ring=ring) if value else "")
                    for value, aad in zip(row, sealed, strict=True)
                )
                lines.append(f"{pk_value}\t{new_our_id()}\t{own_text}\t{suffix}")
                created.append((pk_value, row.legal_basis))
                if len(lines) == _COPY_CHUNK:
                    copy.write("".join(lines))
                    lines.clear()
            if lines:
                copy.write("".join(lines))
    return created


def _queued_events_copy(
    connection: Any,
    organisation: Organisation,
    created: list[tuple[int, str]],
    due_at: dt.datetime,
    now: dt.datetime,
    source: str,
) -> None:
    quote = connection.ops.quote_name
    meta = MessageEvent._meta
    due = _iso(due_at)
    names = ["organisation_id", "message_id", "kind", "at", "recorded_at", "source", "detail"]
    columns = ", ".join(quote(MessageEvent._meta.get_field(n).column) for n in names)  # type: ignore[union-attr]
    # What follows the message id on every line but the detail, which differs by legal basis.
    middle = "\t".join(_copy_text(v) for v in (Status.QUEUED.value, now, now, source))
    details: dict[str, str] = {}
    lines: list[str] = []
    for pk, basis in created:
        detail = details.get(basis)
        if detail is None:
            detail = json.dumps({"legal_basis": basis, "due_at": due})
            detail = details[basis] = _copy_text(detail)
        lines.append(f"{organisation.pk}\t{pk}\t{middle}\t{detail}\n")
    sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        copy.write("".join(lines))


def _messages_insert_orm(
    organisation: Organisation,
    rows: list[_Row],
    common: dict[str, Any],
    now: dt.datetime,
    source: str,
) -> list[tuple[int, str]]:
    messages = [Message(**common, **row._asdict()) for row in rows]
    # ignore_conflicts: a concurrent run of the same batch inserted some rows first.
    Message.objects.bulk_create(messages, ignore_conflicts=True, batch_size=1000)
    created = list(
        Message.objects.for_organisation(organisation)
        .filter(
            dedupe_key=common["dedupe_key"],
            channel=common["channel"],
            contact_id__in=[r.contact_id for r in rows],
            created_at=now,
            status=Status.QUEUED,
        )
        .values_list("pk", "legal_basis", "due_at")
    )
    MessageEvent.objects.bulk_create(
        [
            MessageEvent(
                organisation=organisation,
                message_id=pk,
                kind=Status.QUEUED,
                at=now,
                recorded_at=now,
                source=source,
                detail={"legal_basis": basis, "due_at": _iso(due)},
            )
            for pk, basis, due in created
        ],
        batch_size=1000,
    )
    return [(pk, basis) for pk, basis, _ in created]


# --- cancel --------------------------------------------------------------------------------------
# Not yet with any worker: waiting, or held by its paused campaign (a withdrawal must not wait
# for the campaign to resume).
CANCELLABLE = (*WAITING, Status.HELD.value)


def message_cancel(
    *, message: Message, source: str = EventSource.STAFF, reason_code: str = "cancelled"
) -> None:
    """Cancel a message that no worker has claimed yet. Raises ``MessageNotCancellable`` once it
    is being sent or has ended: what the provider has cannot be called back.

    ``reason_code`` is a short code (``cancelled``, ``appointment_moved``), never free text: the
    timeline holds no personal data."""
    now = timezone.now()
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status__in=CANCELLABLE).update(
            status=Status.CANCELLED, final_at=now, last_error=reason_code[:300]
        )
        if not changed:
            current = Message.objects.filter(pk=message.pk).values_list("status", flat=True).first()
            raise MessageNotCancellable(
                f"Message {message.pk} is {current}; only queued, deferred or held messages can "
                "be cancelled."
            )
        MessageEvent.objects.create(
            organisation_id=message.organisation_id,
            message_id=message.pk,
            kind=Status.CANCELLED,
            at=now,
            recorded_at=now,
            source=source,
            detail={"reason": reason_code[:60]},
        )
        audit_record(
            action="message.cancelled",
            organisation=message.organisation_id,
            object_type="message",
            object_id=message.pk,
        )
    message.status = Status.CANCELLED
    message.final_at = now


# --- withdrawal ----------------------------------------------------------------------------------
# The cancellation reason per withdrawal cause: the same codes as the eligibility refusal.
_WITHDRAWAL_REASON = {"": Reason.WITHDRAWN, "lapsed": Reason.LAPSED, "objection": Reason.OBJECTION}


def messages_cancel_on_withdrawal(
    *,
    organisation_id: int,
    contact_id: int,
    purpose: str,
    channels: Sequence[str],
    cause: str = "",
    **_: object,
) -> int:
    """Receiver of ``consent.signals.consent_withdrawn`` (CON-2): cancel the contact's queued,
    deferred and held marketing messages for that purpose on those channels at once, each with the
    reason in its timeline (``withdrawn``, ``lapsed`` or ``objection``). Returns how many.

    Transactional messages stand on the contract, not on consent, and are left alone. A message
    a worker claimed meanwhile cannot be cancelled here; dispatch's own decision refuses it.
    Runs after the withdrawal has committed (the signal is sent on commit)."""
    reason = _WITHDRAWAL_REASON.get(cause, Reason.WITHDRAWN)
    queued = Message.objects.filter(
        organisation_id=organisation_id,
        contact_id=contact_id,
        kind=Kind.MARKETING,
        purpose=purpose,
        channel__in=list(channels),
        status__in=CANCELLABLE,
    ).only("pk", "organisation_id", "status")
    cancelled = 0
    for message in queued:
        try:
            message_cancel(message=message, source=EventSource.CONSENT, reason_code=reason)
        except MessageNotCancellable:
            continue
        cancelled += 1
    return cancelled


def api_free_text_set(*, organisation: Organisation, allowed: bool) -> bool:
    """Whether the transactional API may send a calling system's own ``text`` instead of a
    template (off by default). Audited, because it changes what can reach patients without the
    clinic having read it first. Returns whether anything changed."""
    from messaging.receipts import MessagingOptions  # receipts imports this module's callers

    with transaction.atomic():
        options, _ = MessagingOptions.objects.select_for_update().get_or_create(
            organisation=organisation
        )
        if options.api_free_text == allowed:
            return False
        options.api_free_text = allowed
        options.updated_at = timezone.now()
        options.save(update_fields=["api_free_text", "updated_at"])
        audit_record(
            action="messaging.api_free_text_changed",
            organisation=organisation,
            object_type="messaging_options",
            object_id=options.pk,
            details={"allowed": allowed},
        )
    return True


# --- performed actions (MSG-6) --------------------------------------------------------------------
ACTION_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
# A reporting system's clock may run a little ahead of ours.
ACTION_CLOCK_SKEW = dt.timedelta(minutes=5)


class ActionInvalid(ValueError):
    """A performed action that cannot be recorded; ``problems`` is {field: message}."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def message_action_record(
    *,
    message: Message,
    action: str,
    at: dt.datetime | None = None,
    source: str = EventSource.API,
) -> tuple[MessageEvent, bool]:
    """Record that the person did something because of this message (an appointment booked):
    an ``action`` event on its timeline, counted as a conversion in campaign statistics
    (MSG-10). Returns ``(event, created)``; the same action on the same message is recorded
    once (``provider_event_key`` "action:<slug>"), so a retried report changes nothing.

    Only a message the provider had can have caused anything; one refused, cancelled or still
    waiting is refused here, or conversions could exceed what was sent."""
    slug = (action or "").strip().lower()
    problems: dict[str, str] = {}
    if not ACTION_RE.match(slug):
        problems["action"] = (
            f"“{action[:60] if action else ''}” is not an action name: use 1-40 lower-case "
            "letters, digits, '_' or '-', starting with a letter or digit (appointment_booked)."
        )
    now = timezone.now()
    if at is not None:
        if timezone.is_naive(at):
            problems["at"] = "Give the time with its offset or Z (2026-11-25T10:00:00Z)."
        elif at > now + ACTION_CLOCK_SKEW:
            problems["at"] = "The action's time is in the future; give when it happened."
    key = f"action:{slug}"
    existing = MessageEvent.objects.filter(message_id=message.pk, provider_event_key=key).first()
    if existing is not None and not problems:
        return existing, False
    if message.status not in (*HANDED_OVER, Status.SENDING):
        problems["message"] = (
            f"Message {message.pk} is {message.status}: it never reached the person, so no "
            "action can be recorded for it."
        )
    if problems:
        raise ActionInvalid(problems)
    try:
        with transaction.atomic():
            event = MessageEvent.objects.create(
                organisation_id=message.organisation_id,
                message_id=message.pk,
                kind="action",
                at=at or now,
                recorded_at=now,
                source=source,
                detail={"action": slug},
                provider_event_key=key,
            )
    except IntegrityError:  # the same report, at the same moment, from another request
        return MessageEvent.objects.get(message_id=message.pk, provider_event_key=key), False
    return event, True
