"""Expiring download links for the subject's copies (DSR-6 access, DSR-7 portability).

The subject has no account, so the link is the secret: 32 random bytes, of which only the
SHA-256 is stored (``DsrArtifact.token_hash``); the plaintext exists in the notice alone. A hash
of a high-entropy token needs no salt or slow KDF: nothing shorter than the token itself can be
guessed from it. Every download is counted, access-logged (the subject's data was disclosed,
CNT-3) and appended to the request's steps (DSR-14). Expired, removed and unknown links get the
same calm 404, and guessing from one address is cut off after ``DSR_DOWNLOAD_FAILURES_PER_HOUR``
misses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from carely.audit.access_log import access_log_record
from carely.audit.context import ANONYMOUS
from carely.audit.models import AccessAction, AccessPurpose
from carely.lib.keyed_hash import keyed_hash
from dsr.models import ArtifactKind, DsrArtifact, StepKind
from dsr.steps import dsr_step_add

DEFAULT_DAYS = 7
# Kinds the subject may fetch; the evidence pack is the controller's, never behind a link.
SUBJECT_KINDS = (ArtifactKind.ACCESS_ZIP, ArtifactKind.PORTABILITY_ZIP)
# A person mistyping a link fails a handful of times; 2**256 tokens cannot be found at 30 an hour.
FAILURES_PER_HOUR = 30
HOUR = 3600


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def download_token_issue(artifact: DsrArtifact, *, days: int = DEFAULT_DAYS) -> str:
    """Give ``artifact`` a new link secret valid for ``days`` days; returns the plaintext token
    (the only copy: put it in the notice). An earlier link of the same artifact stops working.
    A saved artifact is updated here; an unsaved one gets the fields for its first save."""
    if days < 1:
        raise ValueError(f"A download link must stay valid at least one day, not {days}.")
    token = secrets.token_urlsafe(32)
    artifact.token_hash = token_hash(token)
    artifact.expires_at = timezone.now() + dt.timedelta(days=days)
    if artifact.pk is not None:
        artifact.save(update_fields=["token_hash", "expires_at"])
    return token


def download_url(token: str) -> str:
    """The absolute link for a notice: messages are built without a request, so the origin is
    ``CARELY_PUBLIC_BASE_URL`` (as for unsubscribe links)."""
    base = str(settings.CARELY_PUBLIC_BASE_URL).rstrip("/")
    return f"{base}{reverse('dsr-download', kwargs={'token': token})}"


def artifact_for_token(token: str) -> DsrArtifact | None:
    """The live artifact behind ``token``, or None when unknown, expired or removed."""
    if not token or len(token) > 200:
        return None
    artifact = (
        DsrArtifact.objects.select_related("request", "organisation")
        .filter(token_hash=token_hash(token), kind__in=SUBJECT_KINDS)
        .first()
    )
    if artifact is None or artifact.removed_at is not None or not artifact.stored_file:
        return None
    if artifact.expires_at is None or artifact.expires_at <= timezone.now():
        return None
    return artifact


def _failures_key(request: HttpRequest) -> str:
    ip = get_client_ip_address(request) or "unknown"
    slot = int(time.time() // HOUR)
    # Hashed: the cache holds no addresses.
    who = keyed_hash(ip, purpose="dsr_download_rate", encoding="hex")[:32]
    return f"dsr-download-failures:{who}:{slot}"


def _failures(request: HttpRequest) -> int:
    return int(cache.get(_failures_key(request)) or 0)


def _count_failure(request: HttpRequest) -> None:
    key = _failures_key(request)
    cache.add(key, 0, timeout=HOUR * 2)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=HOUR * 2)


def _language(request: HttpRequest) -> str:
    """Slovenian or English by the browser's Accept-Language (highest q wins); Slovenian when
    the browser names neither, as the clinics' patients mostly read it."""
    best, best_q = "sl", -1.0
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower()[:2]
        if language not in ("sl", "en"):
            continue
        try:
            q = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            continue
        if q > best_q:
            best, best_q = language, q
    return best


def _gone(request: HttpRequest, *, status: int = 404) -> HttpResponse:
    response = render(
        request,
        "dsr/access/link_expired.html",
        {"language": _language(request), "too_many": status == 429},
        status=status,
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def artifact_download_record(artifact: DsrArtifact) -> None:
    """Count one download, log the disclosure and append the step, in one transaction."""
    with transaction.atomic():
        DsrArtifact.objects.filter(pk=artifact.pk).update(downloads=F("downloads") + 1)
        artifact.refresh_from_db(fields=["downloads"])
        document = f"{artifact.kind}:{artifact.pk}"
        if artifact.organisation_id is not None and artifact.contact_id is not None:
            # The subject fetched their own data: the actor is anonymous (the link holder).
            access_log_record(
                organisation=artifact.organisation,
                subject_type="contact",
                subject_id=artifact.contact_id,
                action=AccessAction.DOWNLOAD,
                what=[document],
                purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
                actor=ANONYMOUS,
            )
        dsr_step_add(
            artifact.request,
            StepKind.DOWNLOADED,
            actor=ANONYMOUS,
            data={
                "artifact_id": artifact.pk,
                "kind": artifact.kind,
                "downloads": artifact.downloads,
            },
        )


@require_GET
def artifact_download(request: HttpRequest, token: str) -> HttpResponseBase:
    if _failures(request) >= FAILURES_PER_HOUR:
        return _gone(request, status=429)
    artifact = artifact_for_token(token)
    if artifact is None:
        _count_failure(request)
        return _gone(request)
    try:
        stream = artifact.stored_file.open("rb")
    except (FileNotFoundError, OSError):
        # The row outlived its object (a purge between steps): nothing to hand out.
        return _gone(request)
    artifact_download_record(artifact)
    filename = f"{artifact.request.reference}-{artifact.kind.replace('_', '-')}.zip"
    response = FileResponse(
        stream, as_attachment=True, filename=filename, content_type="application/zip"
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
