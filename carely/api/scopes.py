"""API key scopes (SEC-3): ``<resource>:read`` and ``<resource>:write`` per API resource.

A key carries an explicit list; nothing implies anything else (``contacts:write`` does not grant
``contacts:read``), so what a key can do is exactly what its list says.
"""

from __future__ import annotations

from collections.abc import Iterable

RESOURCES: tuple[str, ...] = ("contacts", "consents", "messages", "campaigns", "dsr", "files")
ACTIONS: tuple[str, ...] = ("read", "write")

ALL_SCOPES: tuple[str, ...] = tuple(f"{r}:{a}" for r in RESOURCES for a in ACTIONS)
_KNOWN = frozenset(ALL_SCOPES)


class UnknownScope(ValueError):
    """One or more scope names are not known; ``names`` lists them."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        super().__init__(
            f"Unknown scope{'s' if len(self.names) > 1 else ''}: {', '.join(self.names)}. "
            f"Known scopes are {', '.join(ALL_SCOPES)}."
        )


def scope_for(resource: str, *, write: bool) -> str:
    return f"{resource}:{'write' if write else 'read'}"


def scopes_normalise(scopes: Iterable[str]) -> list[str]:
    """Trimmed, de-duplicated, in the canonical order; raises ``UnknownScope`` naming bad ones."""
    cleaned = {s.strip() for s in scopes if s and s.strip()}
    unknown = cleaned - _KNOWN
    if unknown:
        raise UnknownScope(unknown)
    return [s for s in ALL_SCOPES if s in cleaned]
