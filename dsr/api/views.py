"""``/api/v1/dsr/``: data-subject requests for a clinic's systems (DSR-1..DSR-14).

Scopes ``dsr:read`` (list, detail with steps) and ``dsr:write`` (create and every action). The
key's organisation is the queue; another organisation's request is a 404 (TEN-1). Every action
the DPO has in the UI is here too, as ``POST /api/v1/dsr/{id}/<action>/``: ``verify``,
``confirm-subject``, ``request-info``, ``info-received``, ``extend``, ``decide``, ``execute``,
``close``, ``complaint``. A wrong input is a 400 naming the field; an action the request's state
does not allow is a 409 saying what must happen first.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from carely.api.errors import PROBLEM_CONTENT_TYPE, problem_body
from carely.api.models import ApiKey
from carely.api.views import OrganisationScopedViewSet
from contacts.models import Contact
from dsr import services
from dsr.api import serializers as s
from dsr.models import OPEN_STATES, DataSubjectRequest, RequestType, State

_FILTERS = [
    OpenApiParameter("state", OpenApiTypes.STR, enum=State.values, description="Only this state."),
    OpenApiParameter(
        "type", OpenApiTypes.STR, enum=RequestType.values, description="Only this type."
    ),
    OpenApiParameter("overdue", OpenApiTypes.BOOL, description="Only open requests past due."),
]


# Evidence of identity and information the subject sent come as files (multipart).
_WITH_FILES = [JSONParser, MultiPartParser]


def _conflict(request: Request, exc: services.DsrConflict) -> Response:
    body = problem_body(
        status=409,
        code="dsr_state",
        title="Not possible in the request's current state",
        detail=str(exc),
        instance=request.path,
    )
    return Response(body, status=409, content_type=PROBLEM_CONTENT_TYPE)


class DsrViewSet(
    OrganisationScopedViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
):
    """A clinic's data-subject requests, soonest due first."""

    model = DataSubjectRequest
    serializer_class = s.DsrSerializer
    resource = "dsr"
    http_method_names = ["get", "post", "head", "options"]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().prefetch_related("steps")

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        if self.action != "list":
            return queryset
        params = self.request.query_params
        errors: dict[str, list[str]] = {}
        state = params.get("state")
        if state:
            if state not in State.values:
                errors["state"] = [f"“{state[:40]}” is not one of: {', '.join(State.values)}."]
            else:
                queryset = queryset.filter(state=state)
        kind = params.get("type")
        if kind:
            if kind not in RequestType.values:
                errors["type"] = [f"“{kind[:40]}” is not one of: {', '.join(RequestType.values)}."]
            else:
                queryset = queryset.filter(type=kind)
        overdue = (params.get("overdue") or "").lower()
        if overdue in ("1", "true", "yes"):
            queryset = queryset.filter(state__in=OPEN_STATES, due_on__lt=timezone.localdate())
        elif overdue not in ("", "0", "false", "no"):
            errors["overdue"] = ["Use true or false."]
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset

    @extend_schema(parameters=_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def _key(self) -> ApiKey | None:
        key = self.request.auth
        return key if isinstance(key, ApiKey) else None

    def _reply(self, obj: DataSubjectRequest, code: int = status.HTTP_200_OK) -> Response:
        obj = self.get_queryset().get(pk=obj.pk)
        return Response(s.DsrSerializer(obj).data, status=code)

    @extend_schema(
        request=s.DsrInSerializer,
        responses={201: s.DsrSerializer},
        description="Record a request received by the clinic's own system (DSR-1). The subject "
        "is matched by blind index on e-mail, phone and external id (or named by `contact`); "
        "when several contacts match, the DPO confirms which one (`confirm-subject`). Due one "
        "month after `received_at` (default now). The subject is told of receipt.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = s.DsrInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            obj = services.dsr_receive(
                organisation=self.organisation,
                type=data["type"],
                channel=data["channel"],
                subject=dict(data["subject"]),
                received_at=data.get("received_at"),
                details=data.get("details") or "",
                language=data.get("language") or "",
                reply_channel=data.get("reply_channel") or "",
                api_key=self._key(),
            )
        except services.DsrInvalid as exc:
            raise exceptions.ValidationError(exc.errors) from exc
        return self._reply(obj, status.HTTP_201_CREATED)

    def _run(self, request: Request, serializer: type, call: Any) -> Response:
        incoming = serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        obj = self.get_object()
        try:
            result = call(obj, incoming.validated_data)
        except services.DsrInvalid as exc:
            raise exceptions.ValidationError(exc.errors) from exc
        except services.DsrConflict as exc:
            return _conflict(request, exc)
        if isinstance(result, Response):
            return result
        return self._reply(obj)

    @extend_schema(request=s.VerifyInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="verify", parser_classes=_WITH_FILES)
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Identity (DSR-3): send a code to the address on file, check a code, or attest."""

        def call(obj: DataSubjectRequest, data: dict[str, Any]) -> Any:
            if data["method"] == "attestation":
                return services.dsr_attest(
                    obj,
                    user=None,
                    statement=data.get("statement") or "",
                    evidence=data.get("evidence"),
                )
            if data.get("code"):
                if not services.dsr_code_check(obj, code=data["code"]):
                    raise services.DsrInvalid({"code": ["The code is wrong."]})
                return obj
            return services.dsr_code_send(obj, channel=data.get("channel") or "")

        return self._run(request, s.VerifyInSerializer, call)

    @extend_schema(request=s.ConfirmSubjectInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="confirm-subject")
    def confirm_subject(self, request: Request, pk: str | None = None) -> Response:
        def call(obj: DataSubjectRequest, data: dict[str, Any]) -> Any:
            contact = (
                Contact.objects.for_organisation(self.organisation)
                .filter(pk=data["contact"])
                .first()
            )
            if contact is None:
                raise services.DsrInvalid(
                    {"contact": [f"No contact {data['contact']} in your organisation."]}
                )
            return services.dsr_confirm_subject(obj, contact=contact)

        return self._run(request, s.ConfirmSubjectInSerializer, call)

    @extend_schema(request=s.RequestInfoInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="request-info")
    def request_info(self, request: Request, pk: str | None = None) -> Response:
        return self._run(
            request,
            s.RequestInfoInSerializer,
            lambda obj, d: services.dsr_request_info(obj, what=d["what"], identity=d["identity"]),
        )

    @extend_schema(request=s.InfoReceivedInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="info-received", parser_classes=_WITH_FILES)
    def info_received(self, request: Request, pk: str | None = None) -> Response:
        return self._run(
            request,
            s.InfoReceivedInSerializer,
            lambda obj, d: services.dsr_info_received(
                obj,
                note=d.get("note") or "",
                attachment=d.get("attachment"),
                received_at=d.get("received_at"),
            ),
        )

    @extend_schema(request=s.ExtendInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="extend")
    def extend(self, request: Request, pk: str | None = None) -> Response:
        return self._run(
            request,
            s.ExtendInSerializer,
            lambda obj, d: services.dsr_extend_deadline(obj, reason=d["reason"]),
        )

    @extend_schema(request=s.DecideInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="decide")
    def decide(self, request: Request, pk: str | None = None) -> Response:
        return self._run(
            request,
            s.DecideInSerializer,
            lambda obj, d: services.dsr_decide(
                obj,
                decision=d["decision"],
                reason=d.get("reason") or "",
                fee_cents=d.get("fee_cents"),
            ),
        )

    @extend_schema(request=s.ExecuteInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="execute")
    def execute(self, request: Request, pk: str | None = None) -> Response:
        return self._run(
            request,
            s.ExecuteInSerializer,
            lambda obj, d: services.dsr_execute(obj, params=s.clean_params(dict(d))),
        )

    @extend_schema(request=s.CloseInSerializer, responses=s.DsrSerializer)
    @action(detail=True, methods=["post"], url_path="close")
    def close(self, request: Request, pk: str | None = None) -> Response:
        return self._run(
            request,
            s.CloseInSerializer,
            lambda obj, d: services.dsr_close(obj, note=d.get("note") or ""),
        )

    @extend_schema(request=s.ComplaintInSerializer, responses={201: s.DsrSerializer})
    @action(detail=True, methods=["post"], url_path="complaint")
    def complaint(self, request: Request, pk: str | None = None) -> Response:
        """A reasoned complaint about an access decision (DSR-13): a new linked request due in
        5 Slovenian working days."""

        def call(obj: DataSubjectRequest, data: dict[str, Any]) -> Any:
            complaint = services.dsr_complaint_open(
                obj,
                details=data["details"],
                received_at=data.get("received_at"),
                api_key=self._key(),
            )
            return self._reply(complaint, status.HTTP_201_CREATED)

        return self._run(request, s.ComplaintInSerializer, call)
