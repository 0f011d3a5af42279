"""Requests about the platform's own data (DSR-2): the platform DPO's queue.

The platform is controller of its users' accounts ("staff_user" in the registry), of customers'
contact persons and of visitors of its sites. For a user the registry reaches every row, so
access, portability and erasure walk it as they do for a clinic's contact (a ``Subject`` without
an organisation). Customers' contact persons and visitors have no rows the registry can reach by
person (contract documents, server logs bounded by retention), so those requests are carried out
by the platform DPO by hand: ``execute`` then needs a note of what was done, which is kept,
encrypted, as the step's note.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage

from carely.audit.context import Actor
from carely.privacy.registry import Subject, registry
from dsr.models import ArtifactKind, DataSubjectRequest, DsrArtifact, RequestType, SubjectKind

if TYPE_CHECKING:
    from carely.orgs.models import User


class PlatformRequestInvalid(ValueError):
    """A platform request cannot be carried out as asked; the message says why."""


def platform_user_match(email: str) -> User | None:
    from carely.orgs.models import User

    if not email:
        return None
    return User.objects.filter(email__iexact=email.strip()).first()


def platform_code_deliver(user: User, subject: str, text: str) -> None:
    """The code goes to the e-mail address of the account, the one address on file."""
    EmailMessage(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email]
    ).send()


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _store(request: DataSubjectRequest, kind: str, data: bytes) -> tuple[DsrArtifact, str]:
    import hashlib

    from dsr.downloads import download_token_issue

    artifact = DsrArtifact(
        organisation_id=None,
        request=request,
        contact=None,
        kind=kind,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    token = download_token_issue(artifact)
    artifact.stored_file.save(f"{kind}.zip", ContentFile(data), save=False)
    artifact.save()
    return artifact, token


def _user_export(user: User, *, portability: bool, fmt: str) -> bytes:
    stream = io.StringIO()
    registry.export(
        Subject("staff_user", None, user.pk), stream, format=fmt, portability=portability
    )
    return stream.getvalue().encode()


def platform_execute(
    request: DataSubjectRequest, params: Mapping[str, Any], actor: Actor
) -> tuple[dict[str, Any], dict[str, Any], Any, bool, str]:
    """Carry out a platform request; returns (result, notice context, reply address,
    subject gone, note for the step)."""
    from dsr.downloads import download_url
    from dsr.notices import ReplyAddress

    note = str(params.get("note") or "").strip()
    user = request.subject_user
    if request.subject_kind != SubjectKind.STAFF_USER or user is None:
        if len(note) < 10:
            raise PlatformRequestInvalid(
                "Say what was done (which records were found, corrected or deleted): this "
                "subject has no rows the registry reaches, so it is carried out by hand."
            )
        return {"manual": True}, {"summary": ""}, None, False, note
    kind = request.type
    if kind == RequestType.ACCESS:
        described = [e for e in registry.describe() if "staff_user" in e["subjects"]]
        artifact, token = _store(
            request,
            ArtifactKind.ACCESS_ZIP,
            _zip(
                {
                    "access.json": _user_export(user, portability=False, fmt="json"),
                    "processing.json": json.dumps(described, ensure_ascii=False, indent=2).encode(),
                }
            ),
        )
        context = {"link": download_url(token), "expires": artifact.expires_at}
        return {"artifact_id": artifact.pk}, context, None, False, note
    if kind == RequestType.PORTABILITY:
        artifact, token = _store(
            request,
            ArtifactKind.PORTABILITY_ZIP,
            _zip(
                {
                    "data.json": _user_export(user, portability=True, fmt="json"),
                    "data.csv": _user_export(user, portability=True, fmt="csv"),
                }
            ),
        )
        context = {"link": download_url(token), "expires": artifact.expires_at}
        return {"artifact_id": artifact.pk}, context, None, False, note
    if kind == RequestType.ERASURE:
        address = ReplyAddress(email=user.email)
        report = registry.erase(Subject("staff_user", None, user.pk), dry_run=False)
        return {"erased": report.as_dict()}, {"summary": ""}, address, True, note
    if kind == RequestType.RECTIFICATION:
        changes = params.get("changes") or {}
        allowed = {"full_name", "preferred_language"}
        if not isinstance(changes, Mapping) or not changes or set(changes) - allowed:
            raise PlatformRequestInvalid(
                "A user's own account is corrected through full_name or preferred_language; "
                "an e-mail address is changed by the user, who must confirm the new one."
            )
        for field, value in changes.items():
            setattr(user, field, str(value)[:150])
        user.save(update_fields=list(changes))
        return {"fields_changed": sorted(changes)}, {"summary": ""}, None, False, note
    if len(note) < 10:
        raise PlatformRequestInvalid(
            "Say what was done for this request (restriction, objection or withdrawal of a "
            "platform user is carried out by hand)."
        )
    return {"manual": True}, {"summary": ""}, None, False, note
