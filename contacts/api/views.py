"""``/api/v1/contacts/``: create, list and search, read, change, bulk upsert, restrict and lift,
supplementary statements (CNT-1..CNT-4, DSR-8); ``/api/v1/tags/``: the organisation's tags."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from carely.api.views import OrganisationScopedViewSet
from carely.lib.normalise import InvalidPhoneNumber
from contacts.api.serializers import (
    BulkUpsertInSerializer,
    BulkUpsertOutSerializer,
    ContactCreateSerializer,
    ContactPatchSerializer,
    ContactSerializer,
    LiftRestrictionInSerializer,
    RestrictInSerializer,
    RestrictionStateSerializer,
    StatementInSerializer,
    StatementOutSerializer,
    TagSerializer,
)
from contacts.models import Contact, RelationshipStatus, SourceKind, Tag
from contacts.selectors import contacts_with_tag_names, tag_filter_q, tag_list
from contacts.services import (
    BULK_UPSERT_LIMIT,
    ContactInvalid,
    ContactRestricted,
    RestrictionError,
    contact_create,
    contact_lift_restriction,
    contact_restrict,
    contact_statement_add,
    contact_tags_set,
    contact_update,
    contacts_bulk_upsert,
)


class ContactRestrictedError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "contact_restricted"
    default_detail = "The contact is restricted and cannot be changed."


class RestrictionStateError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "restriction_state"
    default_detail = "The contact's restriction does not allow this."


def _invalid(exc: ContactInvalid) -> exceptions.ValidationError:
    return exceptions.ValidationError(exc.errors)


_FILTERS = [
    OpenApiParameter("external_id", OpenApiTypes.STR, description="Exact external id."),
    OpenApiParameter("email", OpenApiTypes.STR, description="Exact e-mail (case-insensitive)."),
    OpenApiParameter(
        "phone", OpenApiTypes.STR, description="Exact phone number, in any common form."
    ),
    OpenApiParameter(
        "updated_since", OpenApiTypes.DATETIME, description="Changed at or after this time."
    ),
    OpenApiParameter("relationship_status", OpenApiTypes.STR, enum=RelationshipStatus.values),
    OpenApiParameter(
        "tag",
        OpenApiTypes.STR,
        many=True,
        description="Carries this tag (case does not matter); repeat it for contacts carrying "
        "any of several tags. A name the organisation has no tag for matches no contact.",
    ),
]


class ContactViewSet(OrganisationScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """A clinic's contacts. Every read is recorded in the access log (CNT-3)."""

    model = Contact
    serializer_class = ContactSerializer
    resource = "contacts"
    access_log_subject = "contact"
    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> Any:
        # Tags for a whole page in one query, not one per contact.
        return contacts_with_tag_names(super().get_queryset())

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        if self.action != "list":
            return queryset
        params = self.request.query_params
        errors: dict[str, list[str]] = {}
        blind = {k: params[k] for k in ("external_id", "email", "phone") if params.get(k)}
        if blind:
            try:
                queryset = queryset.filter_blind(
                    region=self.organisation.default_phone_region, **blind
                )
            except InvalidPhoneNumber as exc:
                errors["phone"] = [str(exc)]
        since = params.get("updated_since")
        if since:
            moment = parse_datetime(since)
            if moment is None:
                errors["updated_since"] = [
                    f"“{since}” is not a date and time; use ISO 8601, e.g. 2025-01-31T08:00:00Z."
                ]
            else:
                if timezone.is_naive(moment):
                    moment = timezone.make_aware(moment)
                queryset = queryset.filter(updated_at__gte=moment)
        relationship = params.get("relationship_status")
        if relationship:
            if relationship not in RelationshipStatus.values:
                errors["relationship_status"] = [
                    f"“{relationship}” is not one of: {', '.join(RelationshipStatus.values)}."
                ]
            else:
                queryset = queryset.filter(relationship_status=relationship)
        tags = [t for t in params.getlist("tag") if t.strip()]
        if tags:
            queryset = queryset.filter(tag_filter_q(self.organisation, any_of=tags))
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset

    @extend_schema(parameters=_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ContactCreateSerializer, responses={201: ContactSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = ContactCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        tags = data.pop("tags", None)
        try:
            with transaction.atomic():  # a bad tag leaves no contact behind
                contact = contact_create(
                    organisation=self.organisation, data=data, source_kind=SourceKind.API
                )
                if tags:
                    contact_tags_set(contact=contact, names=tags, record_change=False)
        except ContactInvalid as exc:
            raise _invalid(exc) from exc
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ContactPatchSerializer, responses=ContactSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        incoming = ContactPatchSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        reason = data.pop("reason", "") or ""
        tags = data.pop("tags", None)
        try:
            with transaction.atomic():
                contact_update(contact=contact, data=data, reason=reason)
                if tags is not None:
                    contact_tags_set(contact=contact, names=tags, reason=reason)
        except ContactInvalid as exc:
            raise _invalid(exc) from exc
        except ContactRestricted as exc:
            raise ContactRestrictedError(str(exc)) from exc
        return Response(ContactSerializer(contact).data)

    @extend_schema(request=BulkUpsertInSerializer, responses=BulkUpsertOutSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-upsert", url_name="bulk-upsert")
    def bulk_upsert(self, request: Request) -> Response:
        # Rows are validated one by one by the service (plain functions), not by a serializer
        # per row: a bad row is reported in its result, never fails its neighbours.
        body = request.data
        rows = body.get("contacts") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise exceptions.ValidationError({"contacts": ["Send a list of contacts."]})
        if len(rows) > BULK_UPSERT_LIMIT:
            raise exceptions.ValidationError(
                {
                    "contacts": [
                        f"At most {BULK_UPSERT_LIMIT:,} contacts per request; this has "
                        f"{len(rows):,}. Split them into several requests."
                    ]
                }
            )
        results = contacts_bulk_upsert(
            organisation=self.organisation, rows=rows, source_kind=SourceKind.API
        )
        counts = {s: 0 for s in ("created", "updated", "unchanged", "rejected")}
        for r in results:
            counts[r.status] += 1
        return Response(
            {
                **counts,
                "results": [
                    {
                        "index": r.index,
                        "status": r.status,
                        "id": r.id,
                        "errors": [
                            {"field": name, "message": message}
                            for name, messages in r.errors.items()
                            for message in messages
                        ],
                    }
                    for r in results
                ],
            }
        )

    @extend_schema(
        request=RestrictInSerializer,
        responses={200: RestrictionStateSerializer},
        description="Restrict the contact (CNT-4): from now on it is only stored. "
        "409 if it is already restricted.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="restrict",
        url_name="restrict",
        serializer_class=RestrictionStateSerializer,
    )
    def restrict(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        incoming = RestrictInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            contact_restrict(contact=contact, reason=incoming.validated_data["reason"])
        except RestrictionError as exc:
            raise RestrictionStateError(str(exc)) from exc
        return Response(RestrictionStateSerializer(contact).data)

    @extend_schema(
        request=LiftRestrictionInSerializer,
        responses={200: RestrictionStateSerializer},
        description="Lift the contact's restriction (CNT-4), recording when and how the person "
        "was informed. 409 if it is not restricted.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="lift-restriction",
        url_name="lift-restriction",
        serializer_class=RestrictionStateSerializer,
    )
    def lift_restriction(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        incoming = LiftRestrictionInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            contact_lift_restriction(
                contact=contact,
                informed_at=incoming.validated_data["informed_at"],
                informed_how=incoming.validated_data["informed_how"],
            )
        except RestrictionError as exc:
            raise RestrictionStateError(str(exc)) from exc
        return Response(RestrictionStateSerializer(contact).data)

    @extend_schema(
        request=StatementInSerializer,
        responses={201: StatementOutSerializer},
        description="Add a supplementary statement that completes the record (DSR-8); it is "
        "kept in the contact's history.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="statements",
        url_name="statements",
        serializer_class=StatementOutSerializer,
    )
    def statements(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        incoming = StatementInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            change = contact_statement_add(
                contact=contact,
                statement=incoming.validated_data["statement"],
                reason=incoming.validated_data.get("reason", ""),
            )
        except ContactInvalid as exc:
            raise _invalid(exc) from exc
        return Response(StatementOutSerializer(change).data, status=status.HTTP_201_CREATED)


class TagViewSet(OrganisationScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """The organisation's tags, each with how many contacts carry it (a count, not who).
    Tags are put on contacts through the contact's ``tags`` field."""

    model = Tag
    serializer_class = TagSerializer
    resource = "contacts"
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Tag.objects.none()
        return tag_list(organisation=self.organisation)
