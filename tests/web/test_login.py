"""Sign-in through the real allauth form: neutral errors, axes lockout, Argon2 (SEC-1)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from carely.web.adapters import NEUTRAL_LOGIN_ERROR
from tests.factories import PASSWORD

pytestmark = pytest.mark.obligation("SEC-1")

LOGIN = "/accounts/login/"


def _post_login(client, email, password):
    return client.post(LOGIN, {"login": email, "password": password})


def _form_errors(response) -> list[str]:
    return [str(e) for errors in response.context["form"].errors.values() for e in errors]


def test_correct_password_signs_in(client, staff_a):
    response = _post_login(client, staff_a.email, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("web:dashboard")
    assert client.get("/").status_code == 200


def test_email_is_case_insensitive(client, staff_a):
    response = _post_login(client, staff_a.email.upper(), PASSWORD)
    assert response.status_code == 302


def test_wrong_password_and_unknown_email_read_the_same(client, staff_a):
    wrong_password = _post_login(client, staff_a.email, "not the password at all")
    unknown_email = _post_login(client, "nobody-here@example.test", PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 200
    assert _form_errors(wrong_password) == _form_errors(unknown_email) == [str(NEUTRAL_LOGIN_ERROR)]
    assert str(NEUTRAL_LOGIN_ERROR) in wrong_password.content.decode()
    assert "_auth_user_id" not in client.session


def test_inactive_account_reads_the_same_as_a_wrong_password(client, staff_a):
    staff_a.is_active = False
    staff_a.save()
    response = _post_login(client, staff_a.email, "not the password at all")
    assert _form_errors(response) == [str(NEUTRAL_LOGIN_ERROR)]


def test_five_failures_lock_the_account_with_minutes_left(client, staff_a, settings):
    settings.AXES_COOLOFF_TIME = __import__("datetime").timedelta(minutes=15)
    statuses = [_post_login(client, staff_a.email, f"wrong {n}").status_code for n in range(5)]
    # The first four are ordinary failures; the fifth reaches the limit and is already refused.
    assert statuses[:4] == [200] * 4
    locked = _post_login(client, staff_a.email, PASSWORD)
    assert locked.status_code == 429
    body = locked.content.decode()
    assert "locked" in body
    assert "15 minutes" in body
    assert locked["Retry-After"] == str(15 * 60)
    assert "_auth_user_id" not in client.session


def test_lockout_minutes_count_down(client, staff_a, time_machine):
    import datetime as dt

    time_machine.move_to(dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC), tick=False)
    for n in range(5):
        _post_login(client, staff_a.email, f"wrong {n}")
    time_machine.move_to(dt.datetime(2025, 3, 3, 9, 10, 30, tzinfo=dt.UTC), tick=False)
    locked = _post_login(client, staff_a.email, PASSWORD)
    assert locked.status_code == 429
    assert "in 5 minutes" in locked.content.decode()  # 4.5 minutes left, rounded up
    time_machine.move_to(dt.datetime(2025, 3, 3, 9, 16, tzinfo=dt.UTC), tick=False)
    assert _post_login(client, staff_a.email, PASSWORD).status_code == 302


def test_lockout_counts_the_email_whatever_its_case(client, staff_a):
    for n in range(5):
        email = staff_a.email.upper() if n % 2 else staff_a.email
        _post_login(client, email, f"wrong {n}")
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.filter(username=staff_a.email).exists()
    assert _post_login(client, staff_a.email, PASSWORD).status_code == 429


def test_allauth_passes_the_request_so_axes_records_the_attempt(client, staff_a):
    from axes.models import AccessAttempt

    _post_login(client, staff_a.email, "wrong")
    attempt = AccessAttempt.objects.get()
    assert attempt.username == staff_a.email
    assert attempt.failures_since_start == 1
    assert attempt.ip_address == "127.0.0.1"


def test_password_is_stored_with_argon2(staff_a):
    staff_a.refresh_from_db()
    assert staff_a.password.startswith("argon2")


def test_signup_is_closed(client, db):
    response = client.get("/accounts/signup/")
    assert response.status_code in (200, 403)
    assert b'name="password1"' not in response.content
