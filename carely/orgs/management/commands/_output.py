"""Shared output helper for the scripting commands: JSON with --json, readable lines otherwise."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand


def emit(command: BaseCommand, payload: dict[str, Any], *, as_json: bool, human: str) -> None:
    if as_json:
        command.stdout.write(json.dumps(payload, indent=2, default=str))
    else:
        command.stdout.write(human)
