"""Suspension for non-payment (TEN-3): the guard every write and every send passes through.

Staff keep read access; writes and sends are refused with a reason a person can act on; nothing is
deleted. Web middleware, the API permission layer and (later) the messaging dispatcher call these.
"""

from __future__ import annotations

from carely.orgs.models import Organisation


class OrganisationSuspended(Exception):
    """The organisation is suspended; ``str(exc)`` is the message to show."""

    code = "organisation_suspended"

    def __init__(self, organisation: Organisation, action: str) -> None:
        self.organisation = organisation
        self.action = action
        reason = organisation.suspension_reason or "unpaid invoices"
        super().__init__(
            f"{organisation.name} is suspended ({reason}), so {action} is not possible. "
            "You can still view everything. Please contact your account manager or settle the "
            "open invoices to lift the suspension."
        )


def suspension_check_write(organisation: Organisation | None) -> None:
    if organisation is not None and organisation.is_suspended:
        raise OrganisationSuspended(organisation, "saving changes")


def suspension_check_send(organisation: Organisation | None) -> None:
    if organisation is not None and organisation.is_suspended:
        raise OrganisationSuspended(organisation, "sending messages")
