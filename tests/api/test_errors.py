"""One error shape: RFC 9457 problem details with field errors (SEC-3's API contract)."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from carely.api.errors import flatten_errors

PROBE = "/api/v1/probe/records"
PROBLEM_KEYS = {"type", "code", "title", "status", "detail", "instance", "errors"}


def _problem(response, status):
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert set(body) == PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"] == f"https://carely.example/problems/{body['code']}"
    return body


@pytest.mark.django_db
def test_an_invalid_body_names_each_field(api_a):
    body = _problem(api_a.post(PROBE, {"label": "x" * 101}, format="json"), 400)
    assert body["code"] == "validation_error"
    assert body["instance"] == PROBE
    assert body["errors"] == [
        {
            "field": "label",
            "code": "max_length",
            "message": "Ensure this field has no more than 100 characters.",
        }
    ]
    assert "label" in body["detail"]
    body = _problem(api_a.post(PROBE, {}, format="json"), 400)
    assert body["errors"][0]["field"] == "label" and body["errors"][0]["code"] == "required"


@pytest.mark.django_db
def test_unparseable_json_is_a_problem(api_a):
    response = api_a.post(PROBE, data="{not json", content_type="application/json")
    assert _problem(response, 400)["code"] == "parse_error"


@pytest.mark.django_db
def test_wrong_method_and_media_type_are_problems(api_a):
    assert _problem(api_a.put(PROBE, {}, format="json"), 405)["code"] == "method_not_allowed"
    response = api_a.post(PROBE, data="label=x", content_type="application/x-www-form-urlencoded")
    assert _problem(response, 415)["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_unknown_api_paths_answer_a_problem_404(api_a, anon_api):
    for client in (api_a, anon_api):
        body = _problem(client.get("/api/v1/no-such-thing"), 404)
        assert body["instance"] == "/api/v1/no-such-thing"
        assert _problem(client.post("/api/elsewhere", {}, format="json"), 404)["code"] == (
            "not_found"
        )


@pytest.mark.django_db
def test_missing_row_is_a_problem_404(api_a):
    assert _problem(api_a.get(f"{PROBE}/999999"), 404)["code"] == "not_found"


def test_nested_and_list_errors_are_flattened_to_dotted_paths():
    class Item(serializers.Serializer):
        email = serializers.EmailField()
        tags = serializers.ListField(child=serializers.IntegerField())

    class Outer(serializers.Serializer):
        name = serializers.CharField()
        items = Item(many=True)

        def validate(self, attrs):
            raise serializers.ValidationError("never reached")

    s = Outer(
        data={
            "name": "",
            "items": [{"email": "ok@x.si", "tags": [1]}, {"email": "no", "tags": [1, "x"]}],
        }
    )
    assert not s.is_valid()
    errors = flatten_errors(s.errors)
    assert {(e["field"], e["code"]) for e in errors} == {
        ("name", "blank"),
        ("items.1.email", "invalid"),
        ("items.1.tags.1", "invalid"),
    }
    assert flatten_errors({"non_field_errors": ["both given"]}) == [
        {"field": None, "code": "invalid", "message": "both given"}
    ]


def test_an_unexpected_error_is_a_logged_problem_500(rf, caplog):
    from carely.api.errors import problem_exception_handler

    request = rf.get("/api/v1/anything")
    response = problem_exception_handler(RuntimeError("boom"), {"request": request})
    assert response.status_code == 500
    assert response.content_type == "application/problem+json"
    assert response.data["code"] == "server_error" and "boom" not in response.data["detail"]
    assert "Unhandled error in API view" in caplog.text
