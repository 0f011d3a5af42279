"""Requests for tests that need one in a given state without walking the whole workflow."""

from __future__ import annotations

import secrets

from django.utils import timezone

from dsr import deadlines
from dsr.models import DataSubjectRequest, State


def make_request(org, contact=None, *, type="access", state=State.VERIFIED, **fields):
    received_at = fields.pop("received_at", timezone.now())
    day = deadlines.local_day(received_at)
    if contact is not None:
        fields.setdefault("subject_name", f"{contact.first_name} {contact.last_name}".strip())
        fields.setdefault("subject_email", contact.email)
        fields.setdefault("subject_phone", contact.phone)
        fields.setdefault("subject_confirmed_at", timezone.now())
    if state in (State.VERIFIED, State.DECIDED, State.EXECUTED, State.CLOSED):
        fields.setdefault("verified_at", timezone.now())
        fields.setdefault("verification_method", "code")
    if state in (State.DECIDED, State.EXECUTED, State.CLOSED):
        fields.setdefault("decision", "granted")
        fields.setdefault("decided_at", timezone.now())
    return DataSubjectRequest.objects.create(
        organisation=org,
        reference="DSR-" + secrets.token_hex(4).upper(),
        type=type,
        channel=fields.pop("channel", "form"),
        state=state,
        received_at=received_at,
        clock_started_on=day,
        due_on=deadlines.due_on(day),
        contact=contact,
        **fields,
    )
