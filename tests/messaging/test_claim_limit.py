"""A claim takes at most its limit, whatever plan PostgreSQL picks (MSG-9, throughput)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from messaging import dispatch
from messaging.models import Message


@pytest.mark.postgres
@pytest.mark.obligation("MSG-9")
def test_a_claim_never_takes_more_than_its_limit_even_on_a_nested_loop_plan(org_a):
    """With the picking subquery inside ``WHERE id IN (...)``, a nested-loop plan re-runs it
    for every outer row; each run skips the rows the previous ones locked, so the claim took
    every waiting row, in time growing with the square of the backlog. PostgreSQL picks that
    plan when its statistics were gathered on an empty outbox (autovacuum analyses a drained
    queue) and a campaign then fills it: exactly what is set up here."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    now = timezone.now()

    def rows(count, tag, **extra):
        return [
            Message(
                organisation=org_a,
                channel="sms",
                kind="marketing",
                purpose="marketing",
                body="x",
                to_address="+38641000000",
                dedupe_key=f"campaign:{tag}:{n}",
                due_at=now,
                **extra,
            )
            for n in range(count)
        ]

    Message.objects.bulk_create(rows(300, "earlier", status="sent"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_message")
    Message.objects.bulk_create(rows(300, "new"))
    ids = dispatch.claim(kinds=["marketing"], limit=50, owner="w1", now=now)
    assert len(ids) == 50
    assert Message.objects.filter(status="sending").count() == 50
    assert Message.objects.filter(status="queued").count() == 250
