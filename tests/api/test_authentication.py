"""Bearer authentication, scopes and the per-key rate limit (SEC-3)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from carely.api.models import ApiKey
from carely.api.services import api_key_revoke
from tests.api.conftest import bearer

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("SEC-3")]

ME = "/api/v1/me"
PROBE = "/api/v1/probe/records"


def _assert_401(response, code):
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["code"] == code
    return body


def test_a_valid_key_authenticates(api_a, org_a, key_a):
    response = api_a.get(ME)
    assert response.status_code == 200
    key, _ = key_a
    assert response.json() == {
        "organisation": {"id": org_a.pk, "slug": "clinic-a", "name": "Clinic A"},
        "key": {"id": key.pk, "name": "Practice system", "prefix": key.prefix},
        "scopes": key.scopes,
    }


def test_no_key_is_401(anon_api):
    body = _assert_401(anon_api.get(ME), "not_authenticated")
    assert "credentials were not provided" in body["detail"]


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Basic dXNlcjpwYXNz", "Token cpk_abc"],
)
def test_a_malformed_header_is_401(header, key_a):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    _assert_401(client.get(ME), "malformed_authorization")


def test_an_unknown_key_is_401(key_a):
    _, plaintext = key_a
    _assert_401(bearer(APIClient(), plaintext[:-2] + "zz").get(ME), "unknown_api_key")
    _assert_401(bearer(APIClient(), "sk_live_123").get(ME), "unknown_api_key")


def test_a_revoked_key_is_401_at_once(api_a, key_a):
    assert api_a.get(ME).status_code == 200
    api_key_revoke(key=key_a[0])
    body = _assert_401(api_a.get(ME), "revoked_api_key")
    assert body["detail"] == "This API key has been revoked."


def test_a_missing_scope_is_403_naming_the_scope(org_a, make_key):
    _, plaintext = make_key(org_a, scopes=["contacts:read"])
    client = bearer(APIClient(), plaintext)
    assert client.get(PROBE).status_code == 200
    response = client.post(PROBE, {"label": "x"}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "missing_scope"
    assert "'contacts:write'" in body["detail"]
    _, other = make_key(org_a, scopes=["files:read"])
    response = bearer(APIClient(), other).get(PROBE)
    assert response.status_code == 403 and "'contacts:read'" in response.json()["detail"]


def test_me_needs_no_particular_scope(org_a, make_key):
    _, plaintext = make_key(org_a, scopes=["dsr:read"])
    response = bearer(APIClient(), plaintext).get(ME)
    assert response.status_code == 200 and response.json()["scopes"] == ["dsr:read"]
    assert bearer(APIClient(), plaintext).post(ME, {}, format="json").status_code == 405


def test_a_method_without_a_declared_scope_fails_closed(key_a, rf):
    from rest_framework.exceptions import PermissionDenied
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from carely.api.permissions import HasScope

    class Undeclared(APIView):
        required_scopes = {"GET": "contacts:read"}

        def get(self, request): ...

        def post(self, request): ...

    request = Request(rf.post("/api/v1/x"))
    request._authenticator, request.user, request.auth = None, None, key_a[0]
    with pytest.raises(PermissionDenied, match="does not allow POST"):
        HasScope().has_permission(request, Undeclared())


def test_rate_limit_answers_429_with_retry_after(org_a, make_key):
    _, plaintext = make_key(org_a, rate_limit_per_minute=3)
    client = bearer(APIClient(), plaintext)
    start = dt.datetime(2026, 3, 2, 9, 0, 10, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        assert [client.get(ME).status_code for _ in range(3)] == [200, 200, 200]
        response = client.get(ME)
        assert response.status_code == 429
        assert response["Retry-After"] == "50"
        body = response.json()
        assert body["code"] == "throttled" and body["status"] == 429
    with time_machine.travel(start + dt.timedelta(seconds=50), tick=False):
        assert client.get(ME).status_code == 200


def test_rate_limits_are_per_key(org_a, make_key):
    _, limited = make_key(org_a, rate_limit_per_minute=1)
    _, other = make_key(org_a, rate_limit_per_minute=1)
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC), tick=False):
        assert bearer(APIClient(), limited).get(ME).status_code == 200
        assert bearer(APIClient(), limited).get(ME).status_code == 429
        assert bearer(APIClient(), other).get(ME).status_code == 200


def test_default_rate_limit_comes_from_settings(org_a, make_key, settings):
    settings.API_DEFAULT_RATE_PER_MINUTE = 2
    key, plaintext = make_key(org_a)
    assert key.rate_per_minute == 2
    client = bearer(APIClient(), plaintext)
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC), tick=False):
        assert [client.get(ME).status_code for _ in range(3)] == [200, 200, 429]


def test_use_of_a_key_is_recorded(api_a, key_a):
    assert ApiKey.objects.get(pk=key_a[0].pk).last_used_at is None
    api_a.get(ME)
    assert ApiKey.objects.get(pk=key_a[0].pk).last_used_at is not None


def test_a_staff_session_is_not_an_api_credential(client, staff_a):
    from tests.conftest import login

    login(client, staff_a)
    response = client.get(ME)
    assert response.status_code == 401
