"""Template placeholders: a small grammar, every mistake named before sending (MSG-3)."""

from __future__ import annotations

import pytest

from messaging.templating import (
    TemplateError,
    parse,
    render,
    template_check,
    values_check,
)

pytestmark = pytest.mark.obligation("MSG-3")


def test_render_fills_builtins_and_declared_variables():
    parsed = parse(
        "Pozdravljeni {{ first_name }}, termin {{appointment_at}} pri {{ organisation_name }}."
    )
    text = render(
        parsed,
        {"first_name": "Ana", "appointment_at": "26. 11. ob 9:00", "organisation_name": "Zdravje"},
    )
    assert text == "Pozdravljeni Ana, termin 26. 11. ob 9:00 pri Zdravje."
    assert parsed.names == ["first_name", "appointment_at", "organisation_name"]


def test_every_missing_value_is_named_at_once():
    parsed = parse("{{ first_name }} {{ appointment_at }} {{ location }}")
    with pytest.raises(TemplateError) as caught:
        render(parsed, {"first_name": "Ana"})
    assert caught.value.problems == [
        "No value for {{ appointment_at }}. Give one, or change the template.",
        "No value for {{ location }}. Give one, or change the template.",
    ]


def test_unknown_placeholder_is_refused_at_save_with_a_suggestion():
    with pytest.raises(TemplateError) as caught:
        template_check(["Hi {{ frist_name }}"], marketing=False, declared=["appointment_at"])
    (problem,) = caught.value.problems
    assert problem.startswith(
        "Unknown placeholder {{ frist_name }}. Did you mean {{ first_name }}?"
    )


def test_paths_and_code_are_not_placeholders():
    with pytest.raises(TemplateError) as caught:
        parse("{{ contact.organisation.name }} {{ foo() }} {{ name|upper }}")
    problems = caught.value.problems
    assert "not a path" in problems[0]
    assert all("not a placeholder name" in p for p in problems[1:]) and len(problems) == 3


def test_unclosed_braces_are_refused():
    with pytest.raises(TemplateError, match="not closed"):
        parse("Hello {{ first_name")


def test_unsubscribe_link_exists_only_for_marketing():
    template_check(["Odjava: {{ unsubscribe_url }}"], marketing=True, declared=[])
    with pytest.raises(TemplateError, match="only in marketing templates"):
        template_check(["Odjava: {{ unsubscribe_url }}"], marketing=False, declared=[])


def test_html_bodies_escape_values_and_text_bodies_do_not():
    parsed = parse("<p>{{ first_name }}</p>")
    assert (
        render(parsed, {"first_name": "<b>Ana</b>"}, html=True) == "<p>&lt;b&gt;Ana&lt;/b&gt;</p>"
    )
    assert render(parse("{{ first_name }}"), {"first_name": "A & B"}) == "A & B"


def test_values_for_variables_the_template_does_not_use_are_refused():
    with pytest.raises(TemplateError, match="no variable named appointment, extra"):
        values_check({"appointment": "x", "extra": "y", "first_name": "Ana"}, ["first_name"])
