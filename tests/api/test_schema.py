"""OpenAPI 3 at /api/schema/ and its UI at /api/docs/, served from the app (no CDN)."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from drf_spectacular.validation import validate_schema


@pytest.mark.django_db
def test_schema_is_valid_openapi_with_me_and_bearer_security(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/me" in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    create = schema["paths"]["/api/v1/probe/records"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])


@pytest.mark.django_db
def test_schema_generates_without_warnings(tmp_path):
    out, err = StringIO(), StringIO()
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "s.yaml"),
        stdout=out,
        stderr=err,
    )
    assert "Warning" not in err.getvalue() and "Error" not in err.getvalue()


@pytest.mark.django_db
@pytest.mark.obligation("SEC-9")
def test_docs_page_loads_only_from_this_server(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    urls = re.findall(r"https?://[^\s\"'<>)]+", html)
    assert [u for u in urls if not u.startswith("http://testserver")] == []
    script = re.search(r'<script src="([^"]*\?script[^"]*)"', html)
    assert script, "the Swagger initialiser should be an external script (CSP)"
    assert client.get(script.group(1).replace("&amp;", "&")).status_code == 200
