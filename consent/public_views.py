"""The patient's own pages (CON-2): unsubscribe link, preference page, public consent form.

No sign-in anywhere here. On the link pages the signed token is the credential: it names one
contact of one organisation, and the contact is looked up in that organisation only, so a token
can never reach another clinic's contact. Writes run as an anonymous actor (a signed-in staff
member opening a patient's link must not appear as the one who recorded it) and keep the IP
address and user agent with the entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from carely.audit.context import ANONYMOUS, acting_as
from carely.lib.rate import over_limit
from carely.orgs.models import Organisation
from carely.orgs.selectors import organisation_get_by_slug
from carely.orgs.suspension import OrganisationSuspended
from carely.web.middleware import LANGUAGE_SESSION_KEY
from consent import selectors
from consent.forms import PreferencesForm, SignupCodeForm, SignupForm
from consent.links import ONE_CLICK_BODY, preferences_url
from consent.models import CONCRETE_CHANNELS, Channel, Purpose, Source, Status, Wording
from consent.sending import ConfirmationNotSent
from consent.services import ContactRestricted, consent_record_wording, consent_withdraw
from consent.signups import SignupRefused, pending_signup_get, signup_confirm, signup_start
from consent.tokens import UnsubscribeTokenInvalid, unsubscribe_token_read
from contacts.models import Contact
from contacts.selectors import contact_get
from contacts.services import ContactInvalid

# Sign-ups per client address per hour: a waiting room shares one address, a script does not
# need more. Codes per e-mail address or phone number per hour: nobody can be flooded with codes.
SIGNUPS_PER_ADDRESS_HOUR = 20
CODES_PER_RECIPIENT_HOUR = 3
HOUR = 3600

ONE_CLICK_KEY, ONE_CLICK_VALUE = ONE_CLICK_BODY.split("=")


# --- helpers ------------------------------------------------------------------------------------


def _client(request: HttpRequest) -> tuple[str, str]:
    ip = get_client_ip_address(request) or ""
    return ip, request.headers.get("User-Agent", "")[:500]


def _over_limit(scope: str, who: str, limit: int, window: int = HOUR) -> bool:
    return over_limit("consent_rate", scope, who, limit, window)


def _use_language(request: HttpRequest, *, preferred: str, fallback: str) -> None:
    """The language chosen on the page wins; then the contact's own (``preferred``), then the
    browser's, then the clinic's (``fallback``)."""
    if request.session.get(LANGUAGE_SESSION_KEY) in dict(settings.LANGUAGES):
        return
    supported = dict(settings.LANGUAGES)
    if preferred not in supported and request.headers.get("Accept-Language"):
        return  # LocaleMiddleware has already chosen from the browser's languages
    language = preferred if preferred in supported else fallback
    if language in supported:
        translation.activate(language)
        request.LANGUAGE_CODE = language


def _language() -> str:
    return (translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]


def current_wordings(organisation: Organisation, language: str) -> dict[int, Wording]:
    """For each purpose, the newest wording in ``language``, else in the clinic's language,
    else the newest in any: the text shown is the text recorded."""
    order = {organisation.default_language: 1, language: 0}

    def rank(wording: Wording) -> tuple[int, int]:
        return (order.get(wording.language, 2), -wording.pk)

    best: dict[int, Wording] = {}
    for wording in selectors.wording_list(organisation=organisation):
        known = best.get(wording.purpose_id)
        if known is None or rank(wording) < rank(known):
            best[wording.purpose_id] = wording
    return best


@dataclass
class Link:
    organisation: Organisation
    contact: Contact
    purpose: Purpose | None  # None: every purpose


def _link(request: HttpRequest, token: str) -> Link:
    try:
        organisation_id, contact_id, slug = unsubscribe_token_read(token)
    except UnsubscribeTokenInvalid:
        raise Http404("bad token") from None
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None:
        raise Http404("organisation gone")
    # Scoped to the token's own organisation: another clinic's contact id is simply not found.
    contact = contact_get(organisation=organisation, contact_id=contact_id)
    purpose = None
    if slug:
        # A purpose removed since the message was sent: withdraw from everything instead.
        purpose = selectors.purpose_list(organisation=organisation).filter(slug=slug).first()
    _use_language(
        request, preferred=contact.preferred_language, fallback=organisation.default_language
    )
    return Link(organisation, contact, purpose)


def _invalid_link(request: HttpRequest) -> HttpResponse:
    return render(request, "consent/link_invalid.html", status=404)


def _states(link: Link) -> dict[tuple[str, str], str]:
    per_key = selectors.consent_states(
        organisation=link.organisation, contact_ids=[link.contact.pk]
    ).get(link.contact.pk, {})
    return {key: state.status for key, state in per_key.items()}


# --- unsubscribe link ---------------------------------------------------------------------------


def _withdraw_for_link(link: Link, request: HttpRequest) -> int:
    """Withdraw the link's purpose (or every purpose with consent) on every channel; returns
    how many entries were written. Nothing is written for what is already withdrawn, so a
    second click, or a mail provider's retry, changes nothing."""
    states = _states(link)
    ip, agent = _client(request)
    purposes = (
        [link.purpose]
        if link.purpose
        else list(selectors.purpose_list(organisation=link.organisation))
    )
    written = 0
    with acting_as(ANONYMOUS):
        for purpose in purposes:
            current = [states.get((purpose.slug, channel)) for channel in CONCRETE_CHANNELS]
            if link.purpose is None:
                needed = Status.GIVEN in current
            else:
                needed = any(status != Status.WITHDRAWN for status in current)
            if not needed:
                continue
            consent_withdraw(
                contact=link.contact,
                purpose=purpose,
                channel=Channel.ALL,
                source=Source.UNSUBSCRIBE_LINK,
                ip_address=ip,
                user_agent=agent,
            )
            written += 1
    return written


@csrf_exempt  # RFC 8058: the one-click POST has no cookie and no token but the URL's own
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirm button and never withdraws (link scanners prefetch); POST
    withdraws. A mailbox provider's POST with ``List-Unsubscribe=One-Click`` gets a short 200,
    never a redirect."""
    try:
        link = _link(request, token)
    except Http404:
        return _invalid_link(request)
    if request.method != "POST":
        context = {"link": link, "organisation": link.organisation, "token": token}
        return render(request, "consent/unsubscribe.html", context)
    written = _withdraw_for_link(link, request)
    if request.POST.get(ONE_CLICK_KEY) == ONE_CLICK_VALUE:
        text = "Unsubscribed." if written else "Already unsubscribed."
        return HttpResponse(f"{text}\n", content_type="text/plain; charset=utf-8")
    context = {
        "link": link,
        "organisation": link.organisation,
        "token": token,
        "already": not written,
    }
    return render(request, "consent/unsubscribe_done.html", context)


# --- preference page ----------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = _link(request, token)
    except Http404:
        return _invalid_link(request)
    purposes = list(selectors.purpose_list(organisation=link.organisation))
    wordings = current_wordings(link.organisation, _language())
    states = _states(link)
    current = {
        (purpose.slug, channel)
        for purpose in purposes
        for channel in CONCRETE_CHANNELS
        if states.get((purpose.slug, channel)) == Status.GIVEN
    }
    form = PreferencesForm(
        request.POST if request.method == "POST" else None,
        purposes=purposes,
        wordings=wordings,
        current=current,
    )
    if request.method == "POST" and form.is_valid():
        problem = _save_preferences(link, request, form.chosen(), current, wordings)
        if problem is None:
            return redirect(f"{request.path}?saved=1")
        form.add_error(None, problem)
    context = {
        "link": link,
        "organisation": link.organisation,
        "token": token,
        "form": form,
        "rows": form.rows(),
        "channels": CONCRETE_CHANNELS,
        "saved": request.method == "GET" and request.GET.get("saved") == "1",
    }
    return render(request, "consent/preferences.html", context, status=400 if form.errors else 200)


def _changes(
    chosen: set[tuple[str, str]], current: set[tuple[str, str]], slugs: Iterable[str]
) -> list[tuple[str, str, str]]:
    """(slug, channel or "all", status) for what changed; withdrawals first, so a refusal to
    give (a restricted record) never holds up a withdrawal."""
    out: list[tuple[str, str, str]] = []
    for status, changed in ((Status.WITHDRAWN, current - chosen), (Status.GIVEN, chosen - current)):
        for slug in slugs:
            channels = [c for c in CONCRETE_CHANNELS if (slug, c) in changed]
            if len(channels) == len(CONCRETE_CHANNELS):
                out.append((slug, Channel.ALL, status))
            else:
                out.extend((slug, channel, status) for channel in channels)
    return out


def _save_preferences(
    link: Link,
    request: HttpRequest,
    chosen: set[tuple[str, str]],
    current: set[tuple[str, str]],
    wordings: dict[int, Wording],
) -> str | None:
    purposes = {p.slug: p for p in selectors.purpose_list(organisation=link.organisation)}
    ip, agent = _client(request)
    common: dict[str, Any] = {
        "contact": link.contact,
        "source": Source.PREFERENCE_PAGE,
        "ip_address": ip,
        "user_agent": agent,
    }
    with acting_as(ANONYMOUS):
        for slug, channel, status in _changes(chosen, current, purposes):
            purpose = purposes[slug]
            if status == Status.WITHDRAWN:
                consent_withdraw(purpose=purpose, channel=channel, **common)
                continue
            wording = wordings.get(purpose.pk)
            if wording is None:
                continue  # the form offers no switch without a text to agree to
            try:
                consent_record_wording(
                    wording=wording, channel=channel, status=Status.GIVEN, **common
                )
            except (ContactRestricted, OrganisationSuspended):
                return _(
                    "We could not turn on messages just now; anything you turned off is saved. "
                    "Please contact the clinic."
                )
    return None


# --- public consent form (double opt-in) --------------------------------------------------------


def _organisation_or_404(slug: str) -> Organisation:
    try:
        return organisation_get_by_slug(slug=slug)
    except Organisation.DoesNotExist:
        raise Http404("no such organisation") from None


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest, slug: str) -> HttpResponse:
    organisation = _organisation_or_404(slug)
    _use_language(request, preferred="", fallback=organisation.default_language)
    language = _language()
    wordings = current_wordings(organisation, language)
    purposes = [p for p in selectors.purpose_list(organisation=organisation) if p.pk in wordings]
    form = SignupForm(
        request.POST if request.method == "POST" else None, purposes=purposes, wordings=wordings
    )
    status = 200
    if request.method == "POST":
        ip, agent = _client(request)
        if _over_limit("signup", ip or "unknown", SIGNUPS_PER_ADDRESS_HOUR):
            form.add_error(
                None,
                _(
                    "Many sign-ups have come from this network in the last hour. Please try "
                    "again later, or ask the clinic to record your choices."
                ),
            )
            status = 429
        elif form.is_valid():
            response = _signup_start(request, organisation, form, language, ip, agent)
            if response is not None:
                return response
    if form.errors and status == 200:
        status = 400
    context = {"organisation": organisation, "form": form, "purpose_rows": form.purpose_rows()}
    return render(request, "consent/signup_form.html", context, status=status)


def _signup_start(
    request: HttpRequest,
    organisation: Organisation,
    form: SignupForm,
    language: str,
    ip: str,
    agent: str,
) -> HttpResponse | None:
    data = form.cleaned_data
    recipient = data["email"] or data["phone"]
    if recipient and _over_limit(
        "code", f"{organisation.pk}:{recipient}", CODES_PER_RECIPIENT_HOUR
    ):
        form.add_error(
            None,
            _(
                "We have already sent several codes to this address. Please use the latest "
                "one, or try again in an hour."
            ),
        )
        return None
    try:
        pending = signup_start(
            organisation=organisation,
            data=data,
            wordings=form.chosen_wordings(),
            channels=data["channels"],
            language=language,
            ip_address=ip,
            user_agent=agent,
        )
    except ContactInvalid as exc:
        form.add_errors(exc.errors)
        return None
    except ConfirmationNotSent as exc:
        form.add_error(None, str(exc))
        return None
    except OrganisationSuspended:
        form.add_error(
            None, _("The clinic cannot take sign-ups online just now. Please contact the clinic.")
        )
        return None
    return redirect(
        "consent_public:signup_code", slug=organisation.slug, reference=pending.reference
    )


@require_http_methods(["GET", "HEAD", "POST"])
def signup_code(request: HttpRequest, slug: str, reference: str) -> HttpResponse:
    organisation = _organisation_or_404(slug)
    _use_language(request, preferred="", fallback=organisation.default_language)
    pending = pending_signup_get(organisation=organisation, reference=reference)
    context: dict[str, Any] = {"organisation": organisation, "pending": pending}
    if pending is None:
        return render(request, "consent/signup_gone.html", context, status=404)
    form = SignupCodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        ip, agent = _client(request)
        try:
            contact = signup_confirm(
                signup=pending, code=form.cleaned_data["code"], ip_address=ip, user_agent=agent
            )
        except SignupRefused as exc:
            form.add_error("code", str(exc))
            context["finished"] = exc.code in ("expired", "locked", "restricted")
        else:
            context = {"organisation": organisation, "preferences_url": preferences_url(contact)}
            return render(request, "consent/signup_done.html", context)
    context["form"] = form
    return render(request, "consent/signup_code.html", context, status=400 if form.errors else 200)
