"""Organisation services."""

from __future__ import annotations

import pytest

from carely.orgs.services import SlugTaken, organisation_create


@pytest.mark.obligation("DSR-2")
def test_the_platform_slug_is_reserved_for_the_platforms_request_form(db):
    with pytest.raises(SlugTaken, match="reserved"):
        organisation_create(name="Platform", slug="platform")
    assert organisation_create(name="Platform").slug == "platform-2"
