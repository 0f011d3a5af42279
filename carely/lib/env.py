"""Strict readers for environment variables.

Every reader names the variable in its error, so a misconfigured deployment stops at start-up with a
message an operator can act on instead of failing later on the first request that touches it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlparse


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(f"{name} must be set")
            return default
        return value

    def required(self, name: str, *, why: str = "") -> str:
        value = self.raw(name)
        if value is None:
            suffix = f" ({why})" if why else ""
            raise ConfigError(f"{name} must be set{suffix}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.environ.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name} must be one of true/false/1/0/yes/no, got {value!r}")

    def number(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {number}")
        return number

    def csv(
        self, name: str, default: list[str] | None = None, *, required: bool = False
    ) -> list[str]:
        value = self.raw(name)
        if value is None:
            if required:
                raise ConfigError(f"{name} must be set (comma-separated)")
            return list(default or [])
        items = [item.strip() for item in value.split(",") if item.strip()]
        if required and not items:
            raise ConfigError(f"{name} must list at least one value")
        return items

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, schemes: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
            raise ConfigError(
                f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return value
