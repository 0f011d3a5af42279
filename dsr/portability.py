"""Data portability (DSR-7, GDPR Art. 20): the data the subject provided, as JSON and CSV in one
ZIP, and optionally sent to another controller's HTTPS endpoint.

Which data, the rule:

- a column counts only if its registry declaration says ``provided_by_subject=True`` (what the
  person typed, chose or sent: name, address, consent choices, replies, uploaded documents), never
  what the clinic derived or recorded about them (blind indexes, external ids, tags, IP address
  and user agent of a consent, message texts the clinic sent);
- and only from models whose declared purposes include at least one the organisation's records of
  processing (``ProcessingPurpose``, SEC-6) base on **consent** or **contract**, because Art. 20(1)
  grants the right only for processing on those bases. A purpose the organisation has not
  recorded yet has no basis we could rely on, so it does not qualify; the JSON lists each model
  left out and why, so the DPO can see what recording a purpose would change.

Rows are read through the registry's scoped query (this organisation, this contact) and written
to temporary files as they come, like the access response (``dsr.access``).
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import os
import tempfile
import zipfile
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.utils import timezone
from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError

from carely.audit.access_log import access_log_record
from carely.audit.context import Actor
from carely.audit.models import AccessAction, AccessPurpose
from carely.lib.safe_csv import safe_cell
from carely.orgs.models import Organisation
from carely.privacy.collect import subject_entries
from carely.privacy.models import LegalBasis
from carely.privacy.records import records_of_processing
from carely.privacy.registry import FieldEntry, ModelEntry, Subject, registry
from dsr.access import (
    Walk,
    artifact_store,
    copy_files,
    json_text,
    request_subject,
    subject_rows,
    take_files,
)
from dsr.models import ArtifactKind, DataSubjectRequest, DsrArtifact, PortabilityPush, StepKind
from dsr.steps import dsr_step_add

FORMAT = "carely-portability/1"
PORTABLE_BASES = frozenset({LegalBasis.CONSENT, LegalBasis.CONTRACT})
PUSH_TIMEOUT_SECONDS = 20.0
EXCERPT = 500


class PushUrlRefused(ValueError):
    """The endpoint given for a push is not one we send personal data to; says why."""


def _portable_models(organisation: Organisation) -> tuple[set[str], list[dict[str, Any]]]:
    """Labels of the models whose processing rests on consent or contract, and the models with
    provided data that were left out, with the reason."""
    bases = {
        activity.slug: activity.purpose.legal_basis
        for activity in records_of_processing(organisation=organisation)
        if activity.purpose is not None
    }
    portable: set[str] = set()
    left_out: list[dict[str, Any]] = []
    for entry in registry.entries():
        provided = [f for f in entry.fields_for("contact") if f.personal.provided_by_subject]
        if not provided:
            continue
        qualifying = sorted(p for p in entry.purposes if bases.get(p) in PORTABLE_BASES)
        if qualifying:
            portable.add(entry.label)
        else:
            left_out.append(
                {
                    "model": entry.label,
                    "purposes": {p: bases.get(p, "not recorded") for p in entry.purposes},
                    "reason": "no purpose of this record rests on consent or contract",
                }
            )
    return portable, sorted(left_out, key=lambda item: item["model"])


def _csv_value(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def portability_package_build(
    request: DataSubjectRequest, *, actor: Actor
) -> tuple[DsrArtifact, str]:
    """Build the subject's portable data (DSR-7) as ``portability.json`` and ``portability.csv``
    (plus provided files under ``files/``) in one ZIP; returns the artifact and the plaintext
    token of its download link."""
    contact, organisation = request_subject(request)
    subject = Subject("contact", organisation.pk, contact.pk)
    portable, left_out = _portable_models(organisation)

    def keep(entry: ModelEntry, fentry: FieldEntry) -> bool:
        return entry.label in portable and fentry.personal.provided_by_subject

    entries = [pair for pair in subject_entries(registry, subject) if pair[0].label in portable]
    walk = Walk()
    with tempfile.TemporaryDirectory(prefix="carely-portability-") as folder:
        json_path = os.path.join(folder, "portability.json")
        csv_path = os.path.join(folder, "portability.csv")
        zip_path = os.path.join(folder, "portability.zip")
        head = {
            "format": FORMAT,
            "generated_at": timezone.now().isoformat(),
            "controller": {"name": organisation.name},
            "request": {"reference": request.reference},
            "subject": {"kind": "contact", "contact_id": contact.pk},
            "rule": (
                "data you provided (declared provided_by_subject) from records whose processing "
                "rests on consent or contract (GDPR Art. 20(1))"
            ),
        }
        with (
            open(json_path, "w", encoding="utf-8") as js,
            open(csv_path, "w", encoding="utf-8", newline="") as table,
        ):
            writer = csv.writer(table)
            writer.writerow(["model", "row_id", "column", "value"])
            js.write(json_text(head)[:-1] + ', "models": {')
            first_model = True
            for entry, rows in subject_rows(
                subject, column_filter=keep, context=False, entries=entries
            ):
                first_row = True
                count = 0
                for obj, row in rows:
                    count += 1
                    take_files(entry, obj, row, subject.kind, walk)
                    if first_row:
                        js.write(("" if first_model else "],") + f"\n{json_text(entry.label)}: [\n")
                        first_model = first_row = False
                    else:
                        js.write(",\n")
                    js.write(json_text(row))
                    for name, value in row.items():
                        if name == "id":
                            continue
                        writer.writerow(
                            [entry.label, row["id"], safe_cell(name), safe_cell(_csv_value(value))]
                        )
                walk.counts[entry.label] = count
            js.write(("" if first_model else "]") + "}")
            with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
                files = copy_files(archive, walk)
                js.write(", " + json_text({"files": files, "left_out": left_out})[1:] + "\n")
                js.close()
                table.close()
                archive.write(json_path, "portability.json")
                archive.write(csv_path, "portability.csv")
        return artifact_store(
            request,
            contact,
            ArtifactKind.PORTABILITY_ZIP,
            zip_path,
            organisation=organisation,
            actor=actor,
        )


# --- pushing to another controller -----------------------------------------------------------


def push_url_check(url: str) -> str:
    """The URL if personal data may be sent there, else ``PushUrlRefused`` saying why: HTTPS
    only (http only to hosts in ``settings.DSR_PUSH_INSECURE_HOSTS``, for tests and local
    peers), a host, and no user name or password in the URL (it would be stored with the push)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        raise PushUrlRefused(f"The push URL {url!r} cannot be read: {exc}.") from None
    if not host:
        raise PushUrlRefused(f"The push URL {url!r} has no host; give a full https:// URL.")
    if parts.username or parts.password:
        raise PushUrlRefused(
            "The push URL must not hold a user name or password; agree another way to "
            "authenticate with the receiving controller."
        )
    insecure_hosts = {h.lower() for h in getattr(settings, "DSR_PUSH_INSECURE_HOSTS", ())}
    if parts.scheme == "https" or (parts.scheme == "http" and host.lower() in insecure_hosts):
        if len(url.strip()) > PortabilityPush._meta.get_field("url").max_length:  # type: ignore[operator]
            raise PushUrlRefused("The push URL is longer than 500 characters.")
        return url.strip()
    raise PushUrlRefused(
        f"The push URL must use https:// (got {parts.scheme or 'no'} scheme for host {host}): "
        "the subject's data is only sent encrypted in transit."
    )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_pool: urllib3.PoolManager | None = None


def _http() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        _pool = urllib3.PoolManager(num_pools=4, retries=False)
    return _pool


def _portable_json(request: DataSubjectRequest, *, actor: Actor) -> bytes:
    """The JSON of the request's newest portability ZIP, built now if there is none: what is
    pushed is exactly what the subject can download."""
    artifact = (
        DsrArtifact.objects.filter(
            request=request, kind=ArtifactKind.PORTABILITY_ZIP, removed_at__isnull=True
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if artifact is None or not artifact.stored_file:
        artifact, _token = portability_package_build(request, actor=actor)
    # Read from the archive in place: only the JSON is loaded, not the files beside it.
    with artifact.stored_file.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        return archive.read("portability.json")


def portability_push(request: DataSubjectRequest, url: str, *, actor: Actor) -> PortabilityPush:
    """POST the subject's portable JSON to another controller (DSR-7) and record the outcome:
    status, a response excerpt, bytes and digest sent, or the error. Refuses a non-HTTPS URL
    with ``PushUrlRefused`` before anything is sent. A failed send is recorded, not raised."""
    url = push_url_check(url)
    contact, organisation = request_subject(request)
    body = _portable_json(request, actor=actor)
    push = PortabilityPush(
        organisation=organisation,
        request=request,
        url=url,
        bytes_sent=0,
        sha256=hashlib.sha256(body).hexdigest(),
    )
    try:
        response = _http().request(
            "POST",
            url,
            body=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Carely-PEP portability push",
            },
            timeout=urllib3.Timeout(total=PUSH_TIMEOUT_SECONDS),
            retries=False,
            redirect=False,
            preload_content=False,
        )
        try:
            head = response.read(EXCERPT * 4, decode_content=True)
        finally:
            response.release_conn()
        push.status_code = response.status
        push.bytes_sent = len(body)
        push.response_excerpt = head.decode("utf-8", "replace")[:EXCERPT]
        if not 200 <= response.status < 300:
            push.error = f"the endpoint answered HTTP {response.status}"
    except (ReadTimeoutError, ProtocolError) as exc:
        # The body went out; whether the other side kept it is unknown. Recorded as sent.
        push.bytes_sent = len(body)
        push.error = f"sent, but no complete answer from {urlsplit(url).hostname}: " + (
            exc.__class__.__name__
        )
    except HTTPError as exc:
        push.error = f"could not send to {urlsplit(url).hostname}: {exc.__class__.__name__}"[:300]
    push.pushed_at = timezone.now()
    push.save()
    host = urlsplit(url).hostname or ""
    if _is_ip_address(host):
        # The audit guard reads a dotted address as a digit run (a phone number); the full URL
        # is on the push row the step names.
        host = "ip-address"
    dsr_step_add(
        request,
        StepKind.PUSHED,
        actor=actor,
        data={
            "push_id": push.pk,
            "host": host,
            "status": push.status_code,
            "bytes": push.bytes_sent,
            "ok": not push.error,
        },
    )
    if push.bytes_sent:
        access_log_record(
            organisation=organisation,
            subject_type="contact",
            subject_id=contact.pk,
            action=AccessAction.EXPORT,
            what=[f"portability_push:{push.pk}"],
            purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
            actor=actor,
        )
    return push
