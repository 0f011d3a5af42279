"""Self-service sign-up through the public consent form, confirmed by a code (double opt-in, CON-2).

A sign-up is first a ``PendingSignup``: what the person typed (encrypted), the wordings they
ticked, and a hash of the six-digit code sent to them. Only the right code, within
``SIGNUP_LIFETIME`` and ``MAX_ATTEMPTS``, turns it into a contact and consent entries with source
"form"; the pending row is then deleted. Rows that are never confirmed are deleted by
``pending_signups_purge`` (hourly on beat, and ``manage.py consent_signups_purge``).

The contact is matched only on the address the code went to: that is the one the person proved
they control. Matching on the other address would let anyone attach consent to a stranger's
record by typing the stranger's phone number beside their own e-mail.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from carely.audit.services import audit_record
from carely.lib.keyed_hash import keyed_hash
from carely.orgs.models import Organisation
from carely.orgs.scoping import OrganisationScopedQuerySet
from carely.orgs.suspension import suspension_check_write
from carely.privacy.fields import EncryptedCharField, EncryptedTextField
from consent.models import CONCRETE_CHANNELS, Channel, Source, Status, Wording
from consent.sending import ConfirmationNotSent, confirmation_code_send
from consent.services import consent_record_wording
from contacts.models import Contact, SourceKind
from contacts.services import ContactInvalid, ContactRestricted, contact_create, contact_match
from contacts.validation import contact_clean

SIGNUP_LIFETIME = dt.timedelta(minutes=30)
MAX_ATTEMPTS = 5
CODE_DIGITS = 6
_CODE_PURPOSE = "consent_signup_code"


class PendingSignup(models.Model):
    """A sign-up waiting for its confirmation code. Never a contact until confirmed."""

    class SentTo(models.TextChoices):
        EMAIL = "email", "e-mail"
        SMS = "sms", "SMS"

    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    # The random part of the code page's URL: it names the row without revealing anything.
    reference = models.CharField(max_length=64, unique=True)
    first_name = EncryptedCharField(max_length=100, blank=True)
    last_name = EncryptedCharField(max_length=100, blank=True)
    email = EncryptedCharField(max_length=254, blank=True)
    phone = EncryptedCharField(max_length=40, blank=True)
    language = models.CharField(max_length=8)
    # Ids of the exact wordings shown and ticked, and the channels chosen.
    wording_ids = models.JSONField(default=list)
    channels = models.JSONField(default=list)
    sent_to = models.CharField(max_length=10, choices=SentTo.choices)
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    ip_address = EncryptedCharField(max_length=45, blank=True)
    user_agent = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"pending sign-up #{self.pk}"

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def attempts_left(self) -> int:
        return max(0, MAX_ATTEMPTS - self.attempts)


def code_hash(reference: str, code: str) -> str:
    """A keyed hash, bound to the row: a leaked table does not give the codes away cheaply, and
    a hash copied to another row does not match there."""
    return keyed_hash(f"{reference}:{code}", purpose=_CODE_PURPOSE, encoding="hex")


def code_make() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_matches(signup: PendingSignup, code: str) -> bool:
    typed = "".join(ch for ch in (code or "") if ch.isdigit())
    return hmac.compare_digest(signup.code_hash, code_hash(signup.reference, typed))


def pending_signup_create(
    *,
    organisation: Organisation,
    first_name: str,
    last_name: str,
    email: str,
    phone: str,
    language: str,
    wording_ids: Sequence[int],
    channels: Sequence[str],
    ip_address: str,
    user_agent: str,
    code: str,
) -> PendingSignup:
    """Store a sign-up awaiting ``code`` (the values are already cleaned by the caller).
    Raises ``OrganisationSuspended``: a suspended clinic takes no new consent."""
    suspension_check_write(organisation)
    reference = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        signup = PendingSignup.objects.create(
            organisation=organisation,
            reference=reference,
            first_name=first_name,
            last_name=last_name,
            email=email,
            phone=phone,
            language=language,
            wording_ids=list(wording_ids),
            channels=list(channels),
            sent_to=PendingSignup.SentTo.EMAIL if email else PendingSignup.SentTo.SMS,
            code_hash=code_hash(reference, code),
            ip_address=ip_address,
            user_agent=user_agent[:500],
            created_at=now,
            expires_at=now + SIGNUP_LIFETIME,
        )
        audit_record(
            action="consent.signup_started",
            organisation=organisation,
            object_type="signup",
            object_id=signup.pk,
            details={"sent_to": signup.sent_to, "wording_ids": list(wording_ids)},
        )
    return signup


def pending_signup_get(*, organisation: Organisation, reference: str) -> PendingSignup | None:
    return (
        PendingSignup.objects.for_organisation(organisation)
        .filter(reference=str(reference)[:64])
        .first()
    )


def pending_signup_count_attempt(signup: PendingSignup) -> int:
    """Count one wrong code; returns the attempts left. A conditional UPDATE, so two requests
    at once cannot both slip under the limit."""
    PendingSignup.objects.filter(pk=signup.pk, attempts__lt=MAX_ATTEMPTS).update(
        attempts=models.F("attempts") + 1
    )
    signup.refresh_from_db(fields=["attempts"])
    return signup.attempts_left


def pending_signups_purge(*, now: dt.datetime | None = None, dry_run: bool = False) -> int:
    """Delete sign-ups that were never confirmed in time; returns how many (would be) deleted."""
    expired = PendingSignup.objects.filter(expires_at__lte=now or timezone.now())
    if dry_run:
        return expired.count()
    deleted, _ = expired.delete()
    return deleted


def pending_signup_delete(signup: PendingSignup, **details: Any) -> None:
    with transaction.atomic():
        PendingSignup.objects.filter(pk=signup.pk).delete()
        audit_record(
            action="consent.signup_closed",
            organisation=signup.organisation,
            object_type="signup",
            object_id=signup.pk,
            details=details,
        )


# --- the two steps --------------------------------------------------------------------------------

ADDRESS_OF_CHANNEL = {"email": "email", "sms": "phone", "whatsapp": "phone"}


class SignupRefused(Exception):
    """The code step cannot go on; ``code`` is stable ("expired", "locked", "wrong",
    "restricted") and ``str()`` tells the person what to do."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def signup_start(
    *,
    organisation: Organisation,
    data: dict[str, str],
    wordings: Sequence[Any],
    channels: Sequence[str],
    language: str,
    ip_address: str = "",
    user_agent: str = "",
) -> PendingSignup:
    """Check what was typed, store it as pending and send the code (to the e-mail address when
    one is given, else by SMS). Raises ``ContactInvalid`` naming each bad field,
    ``ConfirmationNotSent`` (nothing is kept then), ``OrganisationSuspended``."""
    cleaned = contact_clean(
        {k: data.get(k, "") for k in ("first_name", "last_name", "email", "phone")},
        region=organisation.default_phone_region,
    )
    errors: dict[str, list[str]] = {}
    for channel in channels:
        if not cleaned.get(ADDRESS_OF_CHANNEL[channel]):
            field = ADDRESS_OF_CHANNEL[channel]
            errors[field] = [
                _("Add your e-mail address, or untick e-mail.")
                if field == "email"
                else _("Add your phone number, or untick SMS and WhatsApp.")
            ]
    if errors:
        raise ContactInvalid(errors)
    code = code_make()
    signup = pending_signup_create(
        organisation=organisation,
        first_name=cleaned.get("first_name", ""),
        last_name=cleaned.get("last_name", ""),
        email=cleaned.get("email", ""),
        phone=cleaned.get("phone", ""),
        language=language,
        wording_ids=[w.pk for w in wordings],
        channels=list(channels),
        ip_address=ip_address,
        user_agent=user_agent,
        code=code,
    )
    try:
        confirmation_code_send(
            organisation=organisation,
            code=code,
            language=language,
            email=signup.email,
            phone=signup.phone,
        )
    except ConfirmationNotSent:
        pending_signup_delete(signup, outcome="not_sent")
        raise
    return signup


def signup_confirm(
    *, signup: PendingSignup, code: str, ip_address: str = "", user_agent: str = ""
) -> Contact:
    """The right code turns the sign-up into consent entries (source "form", the wordings
    shown, IP and user agent) on a matched or new contact, and the pending row goes.
    Raises ``SignupRefused``."""
    if signup.is_expired:
        raise SignupRefused(
            "expired", _("This code has expired. Please fill in the form again for a new code.")
        )
    if signup.attempts_left <= 0:
        raise SignupRefused(
            "locked", _("Too many wrong codes. Please fill in the form again for a new code.")
        )
    if not code_matches(signup, code):
        left = pending_signup_count_attempt(signup)
        if left <= 0:
            raise SignupRefused(
                "locked", _("Too many wrong codes. Please fill in the form again for a new code.")
            )
        raise SignupRefused(
            "wrong",
            _("That code is not right. Check the message and try again (%(left)d left).")
            % {"left": left},
        )
    organisation = signup.organisation
    with transaction.atomic():
        # Lock the row: a double submit must not record the consent twice.
        locked = PendingSignup.objects.select_for_update().filter(pk=signup.pk).first()
        if locked is None:
            raise SignupRefused("expired", _("This sign-up is already confirmed or has expired."))
        verified = (
            {"email": signup.email}
            if signup.sent_to == PendingSignup.SentTo.EMAIL
            else {"phone": signup.phone}
        )
        contact = contact_match(organisation=organisation, **verified)
        if contact is None:
            contact = contact_create(
                organisation=organisation,
                data={
                    "first_name": signup.first_name,
                    "last_name": signup.last_name,
                    "email": signup.email,
                    "phone": signup.phone,
                    "preferred_language": signup.language,
                    "source": "Public consent form, confirmed by a code sent to the "
                    + ("e-mail address" if "email" in verified else "phone number"),
                },
                source_kind=SourceKind.FORM,
            )
        wordings = Wording.objects.for_organisation(organisation).filter(pk__in=signup.wording_ids)
        channels = sorted(set(signup.channels))
        # One "all" entry when every channel was chosen, else one per channel.
        recorded_channels = [Channel.ALL] if set(channels) == set(CONCRETE_CHANNELS) else channels
        entry_ids = []
        try:
            for wording in wordings.select_related("purpose").order_by("pk"):
                for channel in recorded_channels:
                    entry_ids.append(
                        consent_record_wording(
                            contact=contact,
                            wording=wording,
                            channel=channel,
                            status=Status.GIVEN,
                            source=Source.FORM,
                            ip_address=ip_address,
                            user_agent=user_agent,
                        ).pk
                    )
        except ContactRestricted:
            raise SignupRefused(
                "restricted",
                _("We could not record your choices online. Please contact the clinic."),
            ) from None
        pending_signup_delete(signup, outcome="confirmed", contact_id=contact.pk)
    return contact
