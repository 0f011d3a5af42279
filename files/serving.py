"""Handing a stored file to an authorised person or API key (CNT-5): never a public URL.

Local storage streams the object through the app. On S3 the answer is a redirect to a presigned
URL that lives ``PRESIGNED_SECONDS`` and forces a download under the original name, so the
object stays private (bucket ACL private) and the app does not proxy large recordings.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

from files.models import ContactFile

PRESIGNED_SECONDS = 60


def _s3(storage: object) -> bool:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # pragma: no cover - django-storages is a dependency
        return False
    return isinstance(storage, S3Storage)


def presigned_url(contact_file: ContactFile) -> str:
    storage = contact_file.stored_file.storage
    if getattr(storage, "custom_domain", None) or not getattr(storage, "querystring_auth", False):
        # Without query-string auth, url() would be a plain, permanent object URL.
        raise ImproperlyConfigured(
            "Contact files on S3 need querystring_auth=True and no custom_domain; refusing to "
            "hand out an unsigned URL."
        )
    disposition = content_disposition_header(True, contact_file.original_name)
    return str(
        storage.url(  # type: ignore[call-arg]
            contact_file.stored_file.name,
            parameters={
                "ResponseContentDisposition": disposition,
                "ResponseContentType": contact_file.content_type,
                "ResponseCacheControl": "private, no-store",
            },
            expire=PRESIGNED_SECONDS,
        )
    )


def contact_file_response(contact_file: ContactFile) -> HttpResponse | FileResponse:
    """The download: a short-lived presigned redirect on S3, a stream otherwise. The caller has
    checked permission and written the access-log row."""
    storage = contact_file.stored_file.storage
    if _s3(storage):
        response: HttpResponse | FileResponse = HttpResponseRedirect(presigned_url(contact_file))
    else:
        response = FileResponse(
            storage.open(str(contact_file.stored_file.name), "rb"),
            as_attachment=True,
            filename=contact_file.original_name,
            content_type=contact_file.content_type,
        )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
