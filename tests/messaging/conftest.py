"""Messaging fixtures: consenting contacts in the standing organisations, templates, and the
outbox-only fake provider for every channel unless a test chooses a real adapter."""

from __future__ import annotations

import pytest

from messaging.services import template_save
from tests.consent.conftest import make_contact, record

FAKE = "messaging.providers.fake.FakeProvider"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Rate buckets and 429 blocks live in Redis when it is configured: no test may inherit
    another's."""
    from messaging.ratelimit import limiter

    limiter.cache_clear()
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter("carely:msg:*"))
        if keys:
            client.delete(*keys)
    yield
    limiter.cache_clear()


@pytest.fixture(autouse=True)
def fake_providers(settings):
    from messaging.providers import fake

    settings.MESSAGING_PROVIDERS = {"sms": FAKE, "email": FAKE, "whatsapp": FAKE}
    settings.CARELY_PUBLIC_BASE_URL = "https://pep.example.test"
    fake.outbox.clear()
    yield fake.outbox
    fake.outbox.clear()


@pytest.fixture
def ana(org_a):
    """Active patient with marketing consent on every channel."""
    contact = make_contact(
        org_a,
        first_name="Ana",
        last_name="Novak",
        email="ana@example.test",
        phone="+38641123456",
        preferred_language="sl",
        relationship_status="active",
    )
    record(contact, channel="all", purpose="marketing")
    return contact


@pytest.fixture
def bor(org_a):
    """Active patient without any marketing consent, English-speaking."""
    return make_contact(
        org_a,
        first_name="Bor",
        email="bor@example.test",
        phone="+38641654321",
        preferred_language="en",
        relationship_status="active",
    )


@pytest.fixture
def reminder_sms(org_a):
    return template_save(
        organisation=org_a,
        name="reminder",
        kind="transactional",
        channel="sms",
        language="sl",
        body="Pozdravljeni {{ first_name }}, termin {{ when }} pri {{ organisation_name }}.",
        variables=["when"],
    )


@pytest.fixture
def offer_sms(org_a):
    return template_save(
        organisation=org_a,
        name="offer",
        kind="marketing",
        channel="sms",
        language="sl",
        body="{{ first_name }}, ta mesec 20 % popusta na preglede.",
    )


@pytest.fixture
def offer_email(org_a):
    return template_save(
        organisation=org_a,
        name="offer",
        kind="marketing",
        channel="email",
        language="sl",
        subject="Novost za {{ first_name }}",
        body="Pozdravljeni {{ first_name }}, ta mesec popust.",
        html_body="<p>Pozdravljeni {{ first_name }}, ta mesec popust.</p>",
    )


@pytest.fixture
def reminder_email(org_a):
    return template_save(
        organisation=org_a,
        name="reminder",
        kind="transactional",
        channel="email",
        language="sl",
        subject="Termin {{ when }}",
        body="Pozdravljeni {{ first_name }}, vaš termin je {{ when }}.",
        variables=["when"],
    )
