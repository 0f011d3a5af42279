from django.db import models

from carely.orgs.scoping import OrganisationScopedQuerySet


class ProbeRecord(models.Model):
    organisation = models.ForeignKey(
        "orgs.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    label = models.CharField(max_length=100)

    objects = OrganisationScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return self.label
