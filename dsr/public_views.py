"""The public request form (DSR-1, DSR-3), no account: ``/privacy-request/<org-slug>/`` for a
clinic's patients and ``/privacy-request/platform/`` for the platform's own data.

Abuse resistance without a CAPTCHA (``dsr.forms.PublicRequestForm``): a honeypot field, a signed
form-render time (3 s to 2 h old), and fixed-window rate limits in the shared cache per client
address and per organisation, as the public consent form does.

The form never tells who is a patient: after a submission the person ALWAYS lands on the same
page ("if we hold your details, we have sent a code to the address we have on file"), whether
the details matched one contact (the code then goes out at once, to the address on file, never
to the one typed), several, or none; and every failure on the code page reads the same.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from carely.audit.context import ANONYMOUS, acting_as
from carely.lib.rate import over_limit
from carely.orgs.models import Organisation
from carely.orgs.selectors import organisation_get_by_slug
from carely.web.middleware import LANGUAGE_SESSION_KEY
from dsr import services
from dsr.forms import PlatformRequestForm, PublicCodeForm, PublicRequestForm
from dsr.models import DataSubjectRequest, RequestChannel, State

logger = logging.getLogger(__name__)

# Requests per client address per hour (a waiting room shares one address; a person files one
# or two), and per organisation per hour (a flood against one clinic stops before its DPO's
# queue fills). Code entries per client address per hour: 5 tries per code are the service's.
REQUESTS_PER_ADDRESS_HOUR = 5
REQUESTS_PER_ORGANISATION_HOUR = 100
CODE_TRIES_PER_ADDRESS_HOUR = 20
HOUR = 3600


def _over_limit(scope: str, who: str, limit: int, window: int = HOUR) -> bool:
    return over_limit("dsr_public_rate", scope, who, limit, window)


def _use_language(request: HttpRequest) -> str:
    """Slovenian unless the person chose English on the page (kept in the session)."""
    language = request.session.get(LANGUAGE_SESSION_KEY)
    if language not in dict(settings.LANGUAGES):
        language = "sl"
    translation.activate(language)
    request.LANGUAGE_CODE = language
    return language


def _organisation_or_404(slug: str) -> Organisation:
    try:
        return organisation_get_by_slug(slug=slug)
    except Organisation.DoesNotExist:
        raise Http404("no such organisation") from None


def _limited(request: HttpRequest, organisation: Organisation | None) -> str:
    ip = get_client_ip_address(request) or "unknown"
    if _over_limit("ip", ip, REQUESTS_PER_ADDRESS_HOUR):
        return _(
            "Several requests have come from this network in the last hour. Please try again "
            "later, or write to us by post or e-mail."
        )
    queue = str(organisation.pk) if organisation is not None else "platform"
    if _over_limit("org", queue, REQUESTS_PER_ORGANISATION_HOUR):
        return _(
            "We are receiving an unusual number of requests just now. Please try again in an "
            "hour, or write to us by post or e-mail."
        )
    return ""


def _receive(
    request: HttpRequest,
    form: PublicRequestForm,
    organisation: Organisation | None,
    subject_kind: str,
) -> DataSubjectRequest | None:
    data = form.cleaned_data
    try:
        with acting_as(ANONYMOUS):
            return services.dsr_receive(
                organisation=organisation,
                type=data["type"],
                channel=RequestChannel.FORM,
                subject=form.subject(),
                details=data.get("details") or "",
                language=data["language"],
                subject_kind=subject_kind,
            )
    except services.DsrInvalid as exc:
        form.add_service_errors(exc.errors)
        return None


def _send_code(obj: DataSubjectRequest) -> None:
    """Exactly one contact matched: a code to the address on file. A failure is logged, never
    shown: the page must read the same as for someone we do not know."""
    matched = obj.contact_id is not None or (
        obj.organisation_id is None and obj.subject_user_id is not None
    )
    if not matched:
        return
    try:
        with acting_as(ANONYMOUS):
            services.dsr_code_send(obj)
    except (services.DsrConflict, services.DsrInvalid) as exc:
        logger.warning("dsr public form: code for request %s not sent: %s", obj.pk, exc)


@require_http_methods(["GET", "HEAD", "POST"])
def request_form(request: HttpRequest, slug: str) -> HttpResponse:
    organisation = _organisation_or_404(slug)
    language = _use_language(request)
    form = PublicRequestForm(request.POST if request.method == "POST" else None, language=language)
    status = 200
    if request.method == "POST":
        problem = _limited(request, organisation)
        if problem:
            form.is_valid()
            form.add_error(None, problem)
            status = 429
        elif form.is_valid():
            obj = _receive(request, form, organisation, "contact")
            if obj is not None:
                _send_code(obj)
                return redirect(
                    "dsr_public:verify", slug=organisation.slug, reference=obj.reference
                )
    if form.errors and status == 200:
        status = 400
    context = {"organisation": organisation, "form": form, "platform": False}
    return render(request, "dsr/public_form.html", context, status=status)


def _request_for(organisation: Organisation | None, reference: str) -> DataSubjectRequest:
    queue = (
        DataSubjectRequest.objects.for_organisation(organisation)
        if organisation is not None
        else DataSubjectRequest.objects.filter(organisation__isnull=True)
    )
    obj = queue.filter(reference=reference, channel=RequestChannel.FORM).first()
    if obj is None:
        raise Http404("no such request")
    return obj


@require_http_methods(["GET", "HEAD", "POST"])
def verify(request: HttpRequest, slug: str, reference: str) -> HttpResponse:
    """The one page after every submission, with the code entry (DSR-3)."""
    return _verify_page(request, _organisation_or_404(slug), reference)


@require_http_methods(["GET", "HEAD", "POST"])
def platform_verify(request: HttpRequest, reference: str) -> HttpResponse:
    return _verify_page(request, None, reference)


def _verify_page(
    request: HttpRequest, organisation: Organisation | None, reference: str
) -> HttpResponse:
    _use_language(request)
    obj = _request_for(organisation, reference)
    context: dict[str, Any] = {"organisation": organisation, "reference": obj.reference}
    if obj.verified_at is not None:
        return render(request, "dsr/public_verified.html", context)
    form = PublicCodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        ip = get_client_ip_address(request) or "unknown"
        if _over_limit("code", ip, CODE_TRIES_PER_ADDRESS_HOUR):
            form.add_error(
                None, _("Too many tries from this network. Please try again in an hour.")
            )
            status = 429
        elif _check(obj, form.cleaned_data["code"]):
            return render(request, "dsr/public_verified.html", context)
        else:
            form.add_error(
                "code",
                _(
                    "This code is not right or no longer valid. A code is valid for 30 minutes "
                    "and can be tried 5 times. Check the message and try again; if it keeps "
                    "failing, contact us and quote your reference."
                ),
            )
    if form.errors and status == 200:
        status = 400
    context["form"] = form
    return render(request, "dsr/public_verify.html", context, status=status)


def _check(obj: DataSubjectRequest, code: str) -> bool:
    """Every failure (wrong, expired, blocked, no code because nobody matched) reads the same."""
    if obj.state not in (State.AWAITING_VERIFICATION, State.AWAITING_INFORMATION, State.RECEIVED):
        return False
    try:
        with acting_as(ANONYMOUS):
            return services.dsr_code_check(obj, code=code)
    except services.DsrConflict:
        return False


@require_http_methods(["GET", "HEAD", "POST"])
def platform_form(request: HttpRequest) -> HttpResponse:
    """Requests about the platform's own data: the platform DPO's queue (DSR-2)."""
    language = _use_language(request)
    form = PlatformRequestForm(
        request.POST if request.method == "POST" else None, language=language
    )
    status = 200
    if request.method == "POST":
        problem = _limited(request, None)
        if problem:
            form.is_valid()
            form.add_error(None, problem)
            status = 429
        elif form.is_valid():
            obj = _receive(request, form, None, form.cleaned_data["subject_kind"])
            if obj is not None:
                # A platform user's own account is matched by its e-mail: the same page for
                # everyone, and a code only to the account's address.
                _send_code(obj)
                return redirect("dsr_public:platform_verify", reference=obj.reference)
    if form.errors and status == 200:
        status = 400
    context = {"organisation": None, "form": form, "platform": True}
    return render(request, "dsr/public_form.html", context, status=status)
