"""``/api/v1/contacts/{id}/consents/``: record an entry, read the ledger and the current state
(CON-1, CON-2, CNT-3, TEN-1).

Scopes come from ``resource = "consents"``. Another organisation's contact is a 404. A restricted
contact (CNT-4) may not be given consent (409, as the contacts API answers changes to it), but a
withdrawal is accepted: it only reduces processing, and refusing it would keep a person on a list
against their will. Reading the ledger writes an access-log row for the contact.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from carely.api.views import OrganisationScopedViewSet
from carely.audit.access_log import access_log_record
from consent import selectors
from consent.api.serializers import (
    ConsentEntrySerializer,
    ConsentInSerializer,
    ConsentLedgerSerializer,
)
from consent.models import CONCRETE_CHANNELS, ConsentEntry
from consent.services import ConsentInvalid, ContactRestricted, consent_record
from contacts.api.views import ContactRestrictedError
from contacts.models import Contact


class ContactConsentViewSet(OrganisationScopedViewSet):
    """One contact's consent: its ledger and current state; new entries."""

    model = ConsentEntry
    serializer_class = ConsentEntrySerializer
    resource = "consents"

    def _contact(self) -> Contact:
        try:
            return (
                Contact.objects.for_organisation(self.organisation)
                .select_related("organisation", "guardian")
                .get(pk=int(self.kwargs["contact_id"]))
            )
        except Contact.DoesNotExist:
            raise Http404("No such contact.") from None

    @extend_schema(
        responses=ConsentLedgerSerializer,
        description="Every consent entry of the contact, oldest first, and the current state "
        "for each purpose and channel (the latest entry; an “all” entry counts for each "
        "channel). Recorded in the access log.",
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self._contact()
        organisation = self.organisation
        ledger = list(selectors.consent_ledger(organisation=organisation, contact_id=contact.pk))
        states = selectors.consent_states(organisation=organisation, contact_ids=[contact.pk])
        mine = states.get(contact.pk, {})
        current = []
        for purpose in selectors.purpose_list(organisation=organisation):
            for channel in CONCRETE_CHANNELS:
                state = mine.get((purpose.slug, channel))
                ref = state.current if state else None
                current.append(
                    {
                        "purpose": purpose.slug,
                        "channel": channel,
                        "status": ref.status if ref else None,
                        "entry_id": ref.id if ref else None,
                        "recorded_at": ref.recorded_at if ref else None,
                        "source": ref.source if ref else None,
                        "cause": ref.cause if ref else None,
                        "guardian_entry_id": (
                            state.guardian.id if state and state.guardian else None
                        ),
                    }
                )
        access_log_record(
            organisation=organisation,
            subject_type="contact",
            subject_id=contact.pk,
            what=["consents"],
        )
        body = {"contact": contact.pk, "ledger": ledger, "current": current}
        return Response(ConsentLedgerSerializer(body).data)

    @extend_schema(
        request=ConsentInSerializer,
        responses={201: ConsentEntrySerializer},
        description="Record that the person gave or withdrew consent for a purpose on a channel "
        "(or all channels). 409 when giving consent for a restricted contact; a withdrawal is "
        "always accepted.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self._contact()
        incoming = ConsentInSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            entry = consent_record(
                contact=contact,
                purpose=data["purpose"],
                channel=data["channel"],
                status=data["status"],
                source=data["source"],
                wording_version=data.get("wording_version") or None,
                ip_address=data.get("ip_address") or "",
                user_agent=data.get("user_agent") or "",
            )
        except ConsentInvalid as exc:
            raise exceptions.ValidationError(exc.errors) from exc
        except ContactRestricted as exc:
            raise ContactRestrictedError(str(exc)) from exc
        entry = selectors.consent_ledger(organisation=self.organisation, contact_id=contact.pk).get(
            pk=entry.pk
        )
        return Response(ConsentEntrySerializer(entry).data, status=status.HTTP_201_CREATED)
