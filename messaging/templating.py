"""Message templates: ``{{ name }}`` placeholders and nothing else (MSG-3).

A deliberately small grammar instead of Django's template language: a clinic's staff write these
texts, and a template must not be able to reach into models (``{{ contact.organisation.… }}``),
call anything or loop. A placeholder is a lower-case name; text outside placeholders is sent as
written. Mistakes are found before anything is sent, all at once, each named:

- an *unknown* placeholder (a typo such as ``{{ frist_name }}``, or a dotted path) is refused when
  the template is saved, with the nearest known name as a suggestion;
- a *missing* value (a variable the template uses but the caller did not give) is refused when
  the message is rendered;
- a value given for a variable the template does not use is refused too, because it usually
  means the caller's field name and the template's placeholder disagree.

E-mail HTML bodies get their values HTML-escaped; SMS, WhatsApp and plain-text bodies get them
as they are.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from django.utils.html import escape

# Values the platform fills in itself for every message.
BUILTIN_VARIABLES: dict[str, str] = {
    "first_name": "the contact's first name",
    "last_name": "the contact's last name",
    "organisation_name": "the clinic's name",
}
# Filled in for marketing messages only (MSG-8): the patient's one-click way out.
MARKETING_VARIABLES: dict[str, str] = {"unsubscribe_url": "the unsubscribe link"}

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,49}")


class TemplateError(ValueError):
    """Everything wrong with a template or its values; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(" ".join(problems))


@dataclass(frozen=True)
class Parsed:
    """A template's text split into literal text and placeholder names, in order."""

    parts: tuple[tuple[bool, str], ...]  # (is_placeholder, text or name)

    @cached_property
    def names(self) -> list[str]:
        # Cached: a campaign renders one parsed template for thousands of contacts. (A list
        # for the callers; none of them changes it.)
        return list(dict.fromkeys(name for is_name, name in self.parts if is_name))


def parse(text: str) -> Parsed:
    """Split ``text``; raises ``TemplateError`` for a placeholder that is not a plain name."""
    parts: list[tuple[bool, str]] = []
    problems: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > position:
            parts.append((False, text[position : match.start()]))
        inner = match.group(1).strip()
        if _NAME.fullmatch(inner):
            parts.append((True, inner))
        elif "." in inner:
            problems.append(
                f"“{{{{ {inner} }}}}” is not allowed: a placeholder is a single name such as "
                f"{{{{ first_name }}}}, not a path."
            )
        else:
            problems.append(
                f"“{{{{ {inner} }}}}” is not a placeholder name: use lower-case letters, digits "
                "and underscores, starting with a letter."
            )
        position = match.end()
    rest = text[position:]
    if "{{" in rest or "}}" in rest:
        problems.append("A “{{” or “}}” is not closed: write placeholders as {{ name }}.")
    if rest:
        parts.append((False, rest))
    if problems:
        raise TemplateError(problems)
    return Parsed(tuple(parts))


def known_variables(*, marketing: bool, declared: Iterable[str] = ()) -> set[str]:
    known = set(BUILTIN_VARIABLES) | set(declared)
    if marketing:
        known |= set(MARKETING_VARIABLES)
    return known


def template_check(texts: Iterable[str], *, marketing: bool, declared: Iterable[str]) -> None:
    """At save time: every placeholder in ``texts`` (subject, body, ...) must be known."""
    known = known_variables(marketing=marketing, declared=declared)
    problems: list[str] = []
    for text in texts:
        try:
            names = parse(text).names
        except TemplateError as exc:
            problems.extend(exc.problems)
            continue
        for name in names:
            if name in known:
                continue
            if name in MARKETING_VARIABLES:
                problems.append(
                    f"{{{{ {name} }}}} exists only in marketing templates; a transactional "
                    "message has no unsubscribe link."
                )
                continue
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {{{{ {close[0]} }}}}?" if close else ""
            problems.append(
                f"Unknown placeholder {{{{ {name} }}}}.{hint} Known here: "
                + ", ".join(sorted(known))
                + "."
            )
    if problems:
        raise TemplateError(list(dict.fromkeys(problems)))


def render(parsed: Parsed, values: Mapping[str, str], *, html: bool = False) -> str:
    """The text with every placeholder replaced. Raises ``TemplateError`` naming each missing
    value (all of them, not only the first)."""
    missing = [name for name in parsed.names if values.get(name) in (None, "")]
    if missing:
        # One complete sentence per value, since callers show each problem on its own.
        raise TemplateError(
            [
                f"No value for {{{{ {name} }}}}. Give one, or change the template."
                for name in missing
            ]
        )
    out: list[str] = []
    for is_name, text in parsed.parts:
        if not is_name:
            out.append(text)
            continue
        value = str(values[text])
        out.append(escape(value) if html else value)
    return "".join(out)


def values_check(given: Mapping[str, object], used: Iterable[str]) -> None:
    """Values given for variables no text of the template uses are a caller's mistake."""
    unused = sorted(set(given) - set(used))
    if unused:
        names = ", ".join(unused)
        raise TemplateError(
            [
                f"The template uses no variable named {names}; check the names against the "
                "template's placeholders."
            ]
        )
