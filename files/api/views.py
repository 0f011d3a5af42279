"""``/api/v1/contacts/{id}/files/`` and ``/api/v1/files/{id}/`` (CNT-5, CNT-3, TEN-1).

Scopes come from ``resource = "files"``: reads need ``files:read``, the upload ``files:write``.
A file is a contact's personal data, so each read writes an access-log row for the contact (the
base class would log the file's id as the subject, hence the explicit calls); ``content`` is a
download with purpose "api". Uploads are not wrapped for ``Idempotency-Key``: the body is a file,
and a repeated upload is a second, visible file that can be deleted.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from carely.api.views import OrganisationScopedViewSet
from carely.audit.access_log import access_log_record
from carely.audit.models import AccessAction, AccessPurpose
from contacts.api.views import ContactRestrictedError
from contacts.models import Contact
from files import selectors
from files.api.serializers import ContactFileSerializer, ContactFileUploadSerializer
from files.models import ContactFile
from files.services import (
    ContactRestrictedForFiles,
    FileTooLarge,
    FileTypeRefused,
    contact_file_add,
    max_bytes,
)
from files.serving import contact_file_response


class FileTooLargeError(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "file_too_large"
    default_detail = "The file is too large."


class ContactFileListViewSet(OrganisationScopedViewSet):
    """The files of one contact: list them, upload one."""

    model = ContactFile
    serializer_class = ContactFileSerializer
    resource = "files"
    parser_classes = [MultiPartParser, FormParser]
    upload_limit = staticmethod(max_bytes)  # carely.web.uploads: 413 before the body is read

    def _contact(self) -> Contact:
        try:
            return selectors.contact_for_files(
                organisation=self.organisation, contact_id=int(self.kwargs["contact_id"])
            )
        except Contact.DoesNotExist:
            raise Http404("No such contact.") from None

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ContactFile.objects.none()
        return selectors.contact_file_list(
            organisation=self.organisation, contact=int(self.kwargs["contact_id"])
        )

    @extend_schema(responses=ContactFileSerializer(many=True))
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self._contact()
        page = self.paginate_queryset(self.get_queryset())
        access_log_record(
            organisation=self.organisation,
            subject_type="contact",
            subject_id=contact.pk,
            what=["files"],
        )
        return self.get_paginated_response(ContactFileSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": ContactFileUploadSerializer},
        responses={201: ContactFileSerializer},
    )
    def upload(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self._contact()
        incoming = ContactFileUploadSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            row = contact_file_add(
                contact=contact,
                upload=incoming.validated_data["file"],
                kind=incoming.validated_data["kind"],
                uploaded_by=None,  # the API key is the actor, in the audit event
            )
        except FileTooLarge as exc:
            raise FileTooLargeError(str(exc)) from exc
        except FileTypeRefused as exc:
            raise exceptions.ValidationError({"file": [str(exc)]}) from exc
        except ContactRestrictedForFiles as exc:
            raise ContactRestrictedError(str(exc)) from exc
        return Response(ContactFileSerializer(row).data, status=status.HTTP_201_CREATED)


class ContactFileViewSet(OrganisationScopedViewSet):
    """One file: its metadata, and its content."""

    model = ContactFile
    serializer_class = ContactFileSerializer
    resource = "files"
    lookup_value_regex = r"[0-9]+"

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The content is whatever the file is; a client asking for application/pdf must not
        # get 406 because this API's renderers speak JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "content")

    def _file(self) -> ContactFile:
        try:
            return selectors.contact_file_get(
                organisation=self.organisation, file_id=int(self.kwargs["pk"])
            )
        except ContactFile.DoesNotExist:
            raise Http404("No such file.") from None

    @extend_schema(responses=ContactFileSerializer)
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact_file = self._file()
        access_log_record(
            organisation=self.organisation,
            subject_type="contact",
            subject_id=contact_file.contact_id,
            what=[f"file:{contact_file.pk}"],
        )
        return Response(ContactFileSerializer(contact_file).data)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file (local storage)."
            ),
            302: OpenApiResponse(
                description="A presigned S3 URL in Location, valid for 60 seconds."
            ),
        }
    )
    def content(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        contact_file = self._file()
        access_log_record(
            organisation=self.organisation,
            subject_type="contact",
            subject_id=contact_file.contact_id,
            action=AccessAction.DOWNLOAD,
            what=[f"file:{contact_file.pk}"],
            purpose=AccessPurpose.API,
        )
        return contact_file_response(contact_file)
