"""``registry.export(...)``; the implementation lands in the next commit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

if TYPE_CHECKING:
    from carely.privacy.registry import Registry


def export(
    registry: Registry,
    scope: Any,
    stream: TextIO | BinaryIO,
    *,
    format: str,
    portability: bool,
    chunk_size: int,
) -> int:
    raise NotImplementedError("export lands in the next commit")
