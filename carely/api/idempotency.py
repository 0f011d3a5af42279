"""``Idempotency-Key`` on POST: a repeated request gets the first answer instead of a second effect.

The first request claims the key by inserting an in-flight record in its own short transaction,
so a concurrent repeat sees it (409) rather than running the handler twice. The handler and the
recording of its answer then run in one transaction: if the process dies half-way, both roll
back and the in-flight record is treated as abandoned after ``ABANDONED_AFTER``. Only successful
(2xx) answers are kept; after an error nothing happened, so the client may fix the body and retry
with the same key. Records expire after 24 hours (swept here at lookup time and by
``services.idempotency_record_purge_expired``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from carely.api.models import ApiKey, IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Longer than any request may run (the web server's timeout), so an older in-flight record is
# one whose process died; its transaction rolled back, so running the request again is safe.
ABANDONED_AFTER = dt.timedelta(minutes=10)

_HANDLED = "_carely_idempotency_handled"


class InvalidIdempotencyKey(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_idempotency_key"
    default_detail = (
        f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, "
        "e.g. a UUID."
    )


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = (
        f"This {HEADER} was already used for a different request (another body or endpoint). "
        "Use a new key for a new request."
    )


class IdempotencyRequestInProgress(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_request_in_progress"
    default_detail = (
        f"A request with this {HEADER} is still being processed. Retry in a few seconds to get "
        "its answer."
    )


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """SHA-256 of method, path and the parsed body in canonical JSON (key order, spacing)."""
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "body": data},
        sort_keys=True,
        separators=(",", ":"),
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _clean_key(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise InvalidIdempotencyKey()
    return value


def _replay(record: IdempotencyRecord) -> Response:
    return Response(
        record.response_body,
        status=record.response_status or status.HTTP_200_OK,
        headers={REPLAYED_HEADER: "true"},
    )


def _claim(
    *, api_key: ApiKey, key: str, fingerprint: str, retry: bool = True
) -> tuple[IdempotencyRecord | None, Response | None]:
    """Either a fresh in-flight record (go ahead) or the stored answer to replay."""
    now = timezone.now()
    records = IdempotencyRecord.objects.for_organisation(api_key.organisation).filter(
        api_key=api_key
    )
    records.filter(created_at__lt=now - IdempotencyRecord.LIFETIME).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                organisation=api_key.organisation,
                api_key=api_key,
                key=key,
                request_hash=fingerprint,
            )
        return record, None
    except IntegrityError:
        existing = records.filter(key=key).first()
    if existing is None:  # finished with an error and released between our insert and read
        if retry:
            return _claim(api_key=api_key, key=key, fingerprint=fingerprint, retry=False)
        raise IdempotencyRequestInProgress()
    if existing.state == IdempotencyRecord.State.IN_FLIGHT:
        if retry and existing.created_at < now - ABANDONED_AFTER:
            existing.delete()
            return _claim(api_key=api_key, key=key, fingerprint=fingerprint, retry=False)
        raise IdempotencyRequestInProgress()
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    return None, _replay(existing)


Handler = Callable[..., Response]


def idempotent(handler: Handler) -> Handler:
    """Wrap a view method (``create``) so a POST with ``Idempotency-Key`` runs at most once."""
    if getattr(handler, "_idempotent", False):
        return handler

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        raw = request.headers.get(HEADER)
        api_key = request.auth
        if (
            raw is None
            or request.method != "POST"
            or not isinstance(api_key, ApiKey)
            or getattr(request, _HANDLED, False)  # an override calling super().create()
        ):
            return handler(view, request, *args, **kwargs)
        setattr(request, _HANDLED, True)
        fingerprint = request_fingerprint(
            method=request.method, path=request.path, data=request.data
        )
        record, replay = _claim(api_key=api_key, key=_clean_key(raw), fingerprint=fingerprint)
        if replay is not None:
            return replay
        assert record is not None
        try:
            with transaction.atomic():
                response = handler(view, request, *args, **kwargs)
                if status.is_success(response.status_code):
                    record.state = IdempotencyRecord.State.COMPLETED
                    record.response_status = response.status_code
                    record.response_body = response.data
                    record.save(update_fields=["state", "response_status", "response_body"])
                    return response
        except BaseException:
            record.delete()
            raise
        record.delete()
        return response

    wrapper._idempotent = True  # type: ignore[attr-defined]
    return wrapper
