"""Production settings are strict: a missing or malformed variable stops start-up, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carely.lib.env import ConfigError, Env

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "CARELY_MODE": "production",
    "SECRET_KEY": "p" * 20 + "Q7x!kLm2#zR9@vB4$nW8^tY6&uI3*oP1(aS5)dF0",
    "CARELY_HASH_KEY": "hash-key-for-tests",
    "ALLOWED_HOSTS": "pep.example.eu",
    "DATABASE_URL": "postgres://carely:pw@127.0.0.1:5432/carely",
    "REDIS_URL": "redis://127.0.0.1:6379/9",
    "S3_BUCKET": "carely-files",
    "S3_REGION": "eu-central-1",
    "INFOBIP_BASE_URL": "https://example.api.infobip.com",
    "INFOBIP_API_KEY": "test-key",
    "INFOBIP_REGION": "eu",
    # Two field keys (newest first) and a blind-index key: 32 random bytes each, base64.
    "CARELY_FIELD_KEYS": "k2:q1Q8W0m2Fz7oP3rT9uV5xY4aB6cD8eF0gH2jK4lM6nA=,"
    "k1:Zm9yLXRlc3RzLW9ubHktMzItYnl0ZXMtb2Yta2V5ISE=",
    "CARELY_BLIND_INDEX_KEY": "YmxpbmQtaW5kZXgta2V5LWZvci10ZXN0cy1vbmx5ISE=",
}


def _run(code: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CARELY_", "DATABASE", "REDIS", "DJANGO_"))
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "carely.settings", "CARELY_VAR_DIR": str(tmp_path)})
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _setup(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return _run("import django; django.setup(); print('started')", env, tmp_path)


def test_production_starts_with_every_variable(tmp_path):
    result = _setup(PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "REDIS_URL",
        "S3_BUCKET",
        "S3_REGION",
        "INFOBIP_API_KEY",
        "INFOBIP_BASE_URL",
        "CARELY_HASH_KEY",
        "CARELY_FIELD_KEYS",
        "CARELY_BLIND_INDEX_KEY",
    ],
)
def test_production_refuses_to_start_without_a_variable_and_names_it(tmp_path, missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _setup(env, tmp_path)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "DATABASE_URL",
            "mysql://db/carely",
            "DATABASE_URL must be a URL starting with postgres://",
        ),
        ("REDIS_URL", "127.0.0.1:6379", "REDIS_URL must be a URL starting with redis://"),
        ("CARELY_MODE", "prod", "CARELY_MODE must be one of embedded, production"),
        (
            "CARELY_SESSION_IDLE_MINUTES",
            "half an hour",
            "CARELY_SESSION_IDLE_MINUTES must be a whole",
        ),
        ("CARELY_DEBUG", "maybe", "CARELY_DEBUG must be one of true/false"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 50 characters"),
    ],
)
def test_malformed_values_stop_start_up_with_the_variable_named(tmp_path, name, value, message):
    result = _setup({**PRODUCTION_ENV, name: value}, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_an_integration_switched_on_without_credentials_stops_start_up(tmp_path):
    result = _setup({"EMAIL_PROVIDER": "ses"}, tmp_path)
    assert result.returncode != 0
    assert "SES_REGION must be set" in result.stderr
    result = _setup({"AI_DRAFTING_ENABLED": "true"}, tmp_path)
    assert "BEDROCK_REGION must be set" in result.stderr


def test_embedded_default_needs_no_environment(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, "
        "s.STORAGES['default']['BACKEND'], s.DEBUG)"
    )
    result = _run(code, {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://",
        "django.core.files.storage.FileSystemStorage",
        "False",
    ]
    # Secrets are generated into var/ once and reused, never hard-coded.
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.obligation("SEC-8")
def test_check_deploy_is_clean_in_production(tmp_path):
    """HTTPS redirect, HSTS, secure cookies and CSRF trusted origins are all on in production."""
    result = _run(
        "import sys; from django.core.management import execute_from_command_line as x; "
        "x(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        PRODUCTION_ENV,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.obligation("SEC-7")
def test_system_check_warns_about_regions_outside_the_eea(tmp_path):
    env = {**PRODUCTION_ENV, "S3_REGION": "us-east-1", "INFOBIP_REGION": "us"}
    result = _run(
        "from django.core.management import execute_from_command_line as x; "
        "x(['manage.py', 'check'])",
        env,
        tmp_path,
    )
    output = result.stdout + result.stderr
    assert "carely.W001" in output and "S3_REGION='us-east-1'" in output
    assert "carely.W002" in output
    clean = _run(
        "from django.core.management import execute_from_command_line as x; "
        "x(['manage.py', 'check'])",
        PRODUCTION_ENV,
        tmp_path,
    )
    assert "carely.W00" not in clean.stdout + clean.stderr


class TestEnvHelpers:
    def test_flag_number_csv_choice(self):
        env = Env({"A": "yes", "N": "12", "L": "a, b,,c", "C": "x"})
        assert env.flag("A") is True
        assert env.number("N", 1) == 12
        assert env.csv("L") == ["a", "b", "c"]
        assert env.choice("C", ("x", "y"), "y") == "x"
        assert env.text("MISSING", "fallback") == "fallback"

    def test_errors_name_the_variable(self):
        env = Env({"N": "-3", "C": "z", "U": "ftp://x"})
        with pytest.raises(ConfigError, match="N must be at least 0"):
            env.number("N", 1, minimum=0)
        with pytest.raises(ConfigError, match="C must be one of x, y"):
            env.choice("C", ("x", "y"), "x")
        with pytest.raises(ConfigError, match="U must be a URL starting with https://"):
            env.url("U", ("https",))
        with pytest.raises(ConfigError, match="REQ must be set"):
            env.required("REQ")
