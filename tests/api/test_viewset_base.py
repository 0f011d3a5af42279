"""The organisation-scoped viewset base refuses an order of bases that would skip tenancy."""

from __future__ import annotations

import pytest
from rest_framework import mixins

from carely.api.views import OrganisationScopedViewSet


@pytest.mark.obligation("TEN-1")
def test_mixins_before_the_base_are_refused_at_class_creation():
    with pytest.raises(TypeError, match="list OrganisationScopedViewSet before the DRF mixins"):

        class Wrong(mixins.CreateModelMixin, OrganisationScopedViewSet):
            resource = "contacts"

    class Right(OrganisationScopedViewSet, mixins.CreateModelMixin):
        resource = "contacts"

    assert Right.perform_create is OrganisationScopedViewSet.perform_create
    assert getattr(Right.create, "_idempotent", False)
