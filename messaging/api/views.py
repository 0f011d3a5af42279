"""``/api/v1/messages/``: a practice system sends transactional messages (MSG-2) and reads the log
(MSG-6) with each message's legal basis and consent entry (CON-7).

- ``POST`` queues one message and answers 202; eligibility is decided now and again at dispatch
  (MSG-5). A refusal is a 422 problem listing every reason code; a bad request a 400 naming each
  field (every missing or unknown template variable included). The dedupe key is
  ``api:<key id>:<Idempotency-Key>``, so a repeated request never makes a second message, even
  after the 24-hour idempotency record has expired.
- ``GET`` lists without content (no access-log row: nothing personal is read but ids); opening
  one message shows its content and writes an access-log row for the contact (CNT-3).
Scopes ``messages:read`` / ``messages:write``; another organisation's message is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from carely.api.errors import PROBLEM_CONTENT_TYPE, problem_body
from carely.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from carely.api.models import ApiKey
from carely.api.pagination import CursorPagination
from carely.api.views import OrganisationScopedViewSet
from carely.audit.access_log import access_log_record
from carely.lib.normalise import InvalidPhoneNumber
from carely.orgs.models import Organisation
from contacts.models import Contact
from messaging.api.serializers import (
    CONTENT_FIELDS,
    ActionInSerializer,
    ActionOutSerializer,
    MessageAcceptedSerializer,
    MessageDetailSerializer,
    MessageInSerializer,
    MessageListSerializer,
)
from messaging.forms import MessageFilterForm
from messaging.models import Kind, Message, MessageEvent, MessageTemplate
from messaging.receipts import MessagingOptions
from messaging.services import (
    ActionInvalid,
    MessageInvalid,
    MessageRefused,
    message_action_record,
    message_enqueue,
)

_FILTERS = [
    OpenApiParameter("contact", OpenApiTypes.INT, description="One contact's messages."),
    OpenApiParameter("channel", OpenApiTypes.STR, enum=["sms", "email", "whatsapp"]),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=Kind.values),
    OpenApiParameter("status", OpenApiTypes.STR),
    OpenApiParameter(
        "created_since", OpenApiTypes.DATETIME, description="Created at or after this time."
    ),
]


def _contact(organisation: Organisation, data: dict[str, Any]) -> Contact:
    contacts: Any = Contact.objects.for_organisation(organisation).select_related("organisation")
    if "contact" in data:
        found = contacts.filter(pk=data["contact"]).first()
        field, shown = "contact", str(data["contact"])
    else:
        try:
            found = contacts.filter_blind(external_id=data["external_id"]).first()
        except InvalidPhoneNumber:  # pragma: no cover - external ids are not phones
            found = None
        field, shown = "external_id", data["external_id"]
    if found is None:
        # The same answer whether it exists in another organisation or nowhere (TEN-1).
        raise exceptions.ValidationError({field: [f"No contact {shown!r} in your organisation."]})
    return found


def _template(
    organisation: Organisation, ref: int | str, channel: str, contact: Contact
) -> MessageTemplate:
    """By id: that template (it must be the current version). By name: the current version for
    the channel in the contact's language, else the clinic's, else the only one there is."""
    current = MessageTemplate.objects.for_organisation(organisation).filter(retired_at__isnull=True)
    if isinstance(ref, int):
        found = MessageTemplate.objects.for_organisation(organisation).filter(pk=ref).first()
        if found is None:
            raise exceptions.ValidationError({"template": [f"No template with id {ref}."]})
        return found
    candidates = list(current.filter(name=ref, channel=channel))
    if not candidates:
        raise exceptions.ValidationError(
            {"template": [f"No current {channel} template named {ref!r}."]}
        )
    for language in (contact.preferred_language, organisation.default_language):
        for template in candidates:
            if language and template.language == language[:2].lower():
                return template
    if len(candidates) == 1:
        return candidates[0]
    languages = ", ".join(sorted(t.language for t in candidates))
    raise exceptions.ValidationError(
        {
            "template": [
                f"Template {ref!r} exists in {languages} but not in the contact's or the "
                "clinic's language; give its id to choose one."
            ]
        }
    )


def _invalid(exc: MessageInvalid, *, templated: bool) -> exceptions.ValidationError:
    errors: dict[str, list[str]] = {}
    for problem in exc.problems:
        about_values = "{{" in problem or "variable" in problem
        field = "variables" if templated and about_values else "template" if templated else "text"
        errors.setdefault(field, []).append(problem)
    return exceptions.ValidationError(errors)


def _refused(request: Request, exc: MessageRefused) -> Response:
    body = problem_body(
        status=422,
        code="message_refused",
        title="The message may not be sent",
        detail="This contact may not receive this message now: "
        + ", ".join(exc.reasons)
        + ". See `reasons`; nothing was queued.",
        instance=request.path,
    )
    body["reasons"] = exc.reasons
    return Response(body, status=422, content_type=PROBLEM_CONTENT_TYPE)


class MessageViewSet(OrganisationScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """A clinic's messages: send a transactional one, read the log and one message's record."""

    model = Message
    serializer_class = MessageListSerializer
    resource = "messages"
    pagination_class = CursorPagination
    http_method_names = ["get", "post", "head", "options"]
    lookup_value_regex = r"[0-9]+"

    def get_serializer_class(self) -> Any:
        return MessageDetailSerializer if self.action == "retrieve" else MessageListSerializer

    def get_queryset(self) -> QuerySet[Any]:
        messages = super().get_queryset()
        if self.action == "retrieve":
            events = MessageEvent.objects.order_by("at", "pk")
            messages = messages.prefetch_related(Prefetch("events", queryset=events))
        return messages

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        if self.action != "list":
            return queryset
        params = self.request.query_params
        form = MessageFilterForm(params)
        errors: dict[str, list[str]] = {}
        if not form.is_valid():
            errors.update({k: [str(m) for m in v] for k, v in form.errors.items()})
        contact = params.get("contact")
        if contact:
            if contact.isdigit():
                queryset = queryset.filter(contact_id=int(contact))
            else:
                errors["contact"] = [f"“{contact[:40]}” is not a contact id (a number)."]
        if errors:
            raise exceptions.ValidationError(errors)
        return form.apply(queryset)

    @extend_schema(parameters=_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        message = self.get_object()
        if message.contact_id is not None:
            access_log_record(
                organisation=self.organisation,
                subject_type="contact",
                subject_id=message.contact_id,
                what=[f"message:{message.pk}", *CONTENT_FIELDS],
            )
        return Response(MessageDetailSerializer(message).data)

    @extend_schema(
        request=MessageInSerializer,
        responses={202: MessageAcceptedSerializer},
        description="Queue a transactional message to one contact. 202 with the message's id, "
        "status and legal basis; 422 (problem+json with `reasons`) when the contact may not "
        "receive it; 400 naming each bad field, including every missing or unknown variable.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = MessageInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        organisation = self.organisation
        contact = _contact(organisation, data)
        template = None
        if "template" in data:
            template = _template(organisation, data["template"], data["channel"], contact)
        else:
            options = MessagingOptions.objects.filter(organisation=organisation).first()
            if options is None or not options.api_free_text:
                raise exceptions.ValidationError(
                    {
                        "text": [
                            "This organisation sends API messages from templates only; give a "
                            "template, or ask an organisation admin to allow free text (Messages "
                            "> Templates > Texts sent through the API)."
                        ]
                    }
                )
        key = request.auth
        assert isinstance(key, ApiKey)
        idempotency = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
        try:
            message = message_enqueue(
                organisation=organisation,
                contact=contact,
                channel=data["channel"],
                kind=Kind.TRANSACTIONAL,
                purpose=data["purpose"],
                template=template,
                variables=data.get("variables") or {},
                text=data.get("text"),
                send_at=data.get("send_at"),
                dedupe_key=f"api:{key.pk}:{idempotency or uuid.uuid4().hex}",
                api_key=key,
            )
        except MessageInvalid as exc:
            raise _invalid(exc, templated=template is not None) from exc
        except MessageRefused as exc:
            return _refused(request, exc)
        return Response(MessageAcceptedSerializer(message).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=ActionInSerializer,
        responses={201: ActionOutSerializer, 200: ActionOutSerializer},
        description="Report a performed action (MSG-6): the person did something because of "
        "this message, e.g. booked an appointment. 201 when recorded, 200 when this action was "
        "already recorded for the message (nothing changes); 409 (problem+json) when the "
        "message never reached the person (refused, cancelled, still queued). Campaign "
        "statistics count messages with an action as conversions.",
    )
    @action(detail=True, methods=["post"], url_path="actions")
    def actions(self, request: Request, pk: str | None = None) -> Response:
        incoming = ActionInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        message = self.get_object()
        try:
            event, created = message_action_record(
                message=message, action=data["action"], at=data.get("at")
            )
        except ActionInvalid as exc:
            if set(exc.problems) == {"message"}:
                body = problem_body(
                    status=409,
                    code="message_not_sent",
                    title="The message never reached the person",
                    detail=exc.problems["message"],
                    instance=request.path,
                )
                return Response(body, status=409, content_type=PROBLEM_CONTENT_TYPE)
            raise exceptions.ValidationError(
                {k: [v] for k, v in exc.problems.items() if k != "message"}
            ) from exc
        return Response(
            ActionOutSerializer(event).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
