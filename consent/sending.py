"""The one way a consent confirmation code leaves the system (double opt-in, CON-2).

``confirmation_code_send`` is the only caller-facing function: e-mail goes through Django's
e-mail backend (``EMAIL_BACKEND``), SMS through a small SMS backend chosen like it. There is no
messaging core yet; when it lands it takes this function over (a message row in its outbox,
then its provider), and nothing else has to change.

SMS backends, chosen by the dotted path in ``settings.CONSENT_SMS_BACKEND`` when it is set:

- ``ConsoleSmsBackend`` (the embedded default, ``MESSAGING_PROVIDER=console``): writes the text
  to the "carely.sms" logger, as Django's console e-mail backend prints e-mails, so a person
  running the embedded mode can read the code.
- ``LocmemSmsBackend``: keeps messages in ``sms_outbox`` (tests read it, as they read
  ``django.core.mail.outbox``).
- With ``MESSAGING_PROVIDER=infobip`` and no backend set there is none yet: ``sms_available()``
  is False, and the public form asks for an e-mail address instead of failing after the fact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from carely.orgs.models import Organisation

logger = logging.getLogger("carely.sms")


class ConfirmationNotSent(Exception):
    """The code could not be handed to the e-mail or SMS backend; the message says what to do."""


@dataclass(frozen=True)
class SmsMessage:
    to: str
    text: str
    sender: str


class ConsoleSmsBackend:
    def send(self, message: SmsMessage) -> None:
        logger.info("SMS to %s from %s: %s", message.to, message.sender, message.text)


# Filled by LocmemSmsBackend; a list on purpose, like django.core.mail.outbox.
sms_outbox: list[SmsMessage] = []


class LocmemSmsBackend:
    def send(self, message: SmsMessage) -> None:
        sms_outbox.append(message)


def _sms_backend_path() -> str | None:
    configured = getattr(settings, "CONSENT_SMS_BACKEND", None)
    if configured:
        return str(configured)
    if getattr(settings, "MESSAGING_PROVIDER", "console") == "console":
        return "consent.sending.ConsoleSmsBackend"
    return None


def sms_available() -> bool:
    return _sms_backend_path() is not None


def _texts(organisation: Organisation, code: str) -> tuple[str, str, str]:
    clinic = organisation.name
    subject = _("Your code for %(clinic)s") % {"clinic": clinic}
    body = _(
        "Your confirmation code is %(code)s.\n\n"
        "Enter it on the page where you signed up to confirm your choices with %(clinic)s. "
        "The code is valid for 30 minutes.\n\n"
        "If you did not sign up, ignore this message: nothing will be recorded."
    ) % {"code": code, "clinic": clinic}
    sms = _("%(code)s is your code for %(clinic)s. Valid for 30 minutes.") % {
        "code": code,
        "clinic": clinic,
    }
    return subject, body, sms


def confirmation_code_send(
    *, organisation: Organisation, code: str, language: str, email: str = "", phone: str = ""
) -> str:
    """Send ``code`` by e-mail when there is an address, else by SMS; returns "email" or "sms".

    Raises ``ConfirmationNotSent`` when the backend refuses or SMS is not available.
    """
    with translation.override(language):
        subject, body, sms = _texts(organisation, code)
    if email:
        message = EmailMessage(
            subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[email]
        )
        try:
            message.send()
        except Exception as exc:  # any backend failure reads the same to the person
            logger.warning("confirmation e-mail for organisation %s failed", organisation.pk)
            raise ConfirmationNotSent(
                _("We could not send the e-mail just now. Please try again in a few minutes.")
            ) from exc
        return "email"
    path = _sms_backend_path()
    if path is None or not phone:
        raise ConfirmationNotSent(
            _("We can send the code by e-mail only. Please add your e-mail address.")
        )
    try:
        import_string(path)().send(SmsMessage(to=phone, text=sms, sender=organisation.name[:11]))
    except Exception as exc:
        logger.warning("confirmation SMS for organisation %s failed", organisation.pk)
        raise ConfirmationNotSent(
            _("We could not send the text message just now. Please try again in a few minutes.")
        ) from exc
    return "sms"
