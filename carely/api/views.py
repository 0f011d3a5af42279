"""The API's shared views: the organisation-scoped viewset base and ``/api/v1/me``."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from carely.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from carely.api.idempotency import idempotent
from carely.api.models import ApiKey
from carely.api.serializers import MeOutSerializer
from carely.audit.access_log import access_log_record, access_log_record_many
from carely.orgs.models import Organisation
from carely.orgs.scoping import MissingOrganisation

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (a UUID is fine). Repeating a POST with the same key and body "
    "within 24 hours returns the first response (with `Idempotent-Replayed: true`) instead of "
    "creating twice; the same key with a different body is refused with 422.",
)


def request_organisation(request: Request) -> Organisation:
    """The organisation of an API request: always the key's, never anything the client sent."""
    key = request.auth
    if not isinstance(key, ApiKey):
        raise MissingOrganisation("API request without an API key")
    return key.organisation


class OrganisationScopedViewSet(GenericViewSet):
    """Base for every organisation-owned resource (TEN-1).

    Subclasses set ``model`` (whose default manager is an ``OrganisationScopedQuerySet``),
    ``serializer_class`` and ``resource`` (the scope family, e.g. "contacts"), and add the DRF
    mixins they need *after* this base (checked at class creation). Rows come only from
    ``for_organisation(key's organisation)``, so another organisation's id is a 404; new rows
    get the key's organisation whatever the body says.
    ``create`` is wrapped for ``Idempotency-Key`` automatically.
    Set ``access_log_subject`` (e.g. "contact") on resources that are a data subject's personal
    data: every object returned, one or a page of them, then writes an access-log row (CNT-3).
    """

    model: ClassVar[type[models.Model]]
    resource: ClassVar[str]
    access_log_subject: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        if mixins.CreateModelMixin in mro and mro.index(mixins.CreateModelMixin) < mro.index(
            OrganisationScopedViewSet
        ):
            # DRF's perform_create would shadow ours (also for overrides calling super()) and
            # save rows without an organisation; refuse the class rather than patch around it.
            raise TypeError(
                f"{cls.__name__}: list OrganisationScopedViewSet before the DRF mixins, e.g. "
                f"class {cls.__name__}(OrganisationScopedViewSet, mixins.CreateModelMixin, ...)"
            )
        create = getattr(cls, "create", None)
        if create is not None and not getattr(create, "_idempotent", False):
            wrapped = extend_schema(parameters=[IDEMPOTENCY_PARAMETER])(idempotent(create))
            setattr(cls, "create", wrapped)  # noqa: B010 (mypy cannot see the mixin's create)

    @property
    def organisation(self) -> Organisation:
        return request_organisation(self.request)

    def get_queryset(self) -> models.QuerySet[Any]:
        manager = self.model._default_manager
        if getattr(self, "swagger_fake_view", False):  # schema generation has no API key
            return manager.none()
        return manager.for_organisation(self.organisation)  # type: ignore[attr-defined]

    def perform_create(self, serializer: Any) -> None:
        # An override must do the same: the organisation is the key's, never the body's.
        serializer.save(organisation=self.organisation)

    def _logged_fields(self) -> list[str]:
        meta = getattr(self.get_serializer_class(), "Meta", None)
        fields = getattr(meta, "fields", ())
        return [str(f) for f in fields] if isinstance(fields, list | tuple) else []

    def get_object(self) -> Any:
        obj = super().get_object()
        if self.access_log_subject and self.request.method != "DELETE":
            access_log_record(
                organisation=self.organisation,
                subject_type=self.access_log_subject,
                subject_id=obj.pk,
                what=self._logged_fields(),
            )
        return obj

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        if self.access_log_subject and page is not None:
            access_log_record_many(
                organisation=self.organisation,
                subject_type=self.access_log_subject,
                subject_ids=[obj.pk for obj in page],
                what=self._logged_fields(),
            )
        return page


class MeView(APIView):
    """Who am I: the key's organisation, the key itself and its scopes."""

    required_scopes: ClassVar = {"GET": None}

    @extend_schema(responses=MeOutSerializer, operation_id="me_retrieve")
    def get(self, request: Request) -> Response:
        key = request.auth
        assert isinstance(key, ApiKey)  # HasScope let only API keys through
        organisation = key.organisation
        data = {
            "organisation": {
                "id": organisation.pk,
                "slug": organisation.slug,
                "name": organisation.name,
            },
            "key": {"id": key.pk, "name": key.name, "prefix": key.prefix},
            "scopes": list(key.scopes),
        }
        return Response(MeOutSerializer(data).data)
