"""Tenancy guard rails (TEN-1).

Every query over organisation-owned rows starts from ``for_organisation``. Passing ``None`` raises
instead of meaning "all organisations", so a missing tenant context fails loudly in tests rather
than leaking rows in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

if TYPE_CHECKING:
    from carely.orgs.models import Organisation

_M = TypeVar("_M", bound=models.Model)


class MissingOrganisation(RuntimeError):
    """Raised when code asks for tenant data without saying which tenant."""


def require_organisation(organisation: Organisation | None) -> Organisation:
    if organisation is None or getattr(organisation, "pk", None) is None:
        raise MissingOrganisation("no organisation in context; refusing to query across tenants")
    return organisation


class OrganisationScopedQuerySet(models.QuerySet[_M]):
    def for_organisation(self, organisation: Organisation | None) -> OrganisationScopedQuerySet[_M]:
        return self.filter(organisation=require_organisation(organisation))

    def get_for_organisation(self, organisation: Organisation | None, **lookup: Any) -> _M:
        """The row, or ``DoesNotExist`` (a 404 upstream) when it belongs to another tenant."""
        return self.for_organisation(organisation).get(**lookup)
