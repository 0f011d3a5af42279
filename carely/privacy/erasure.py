"""``registry.erase(subject, dry_run=...)``; the implementation lands in the next commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carely.privacy.registry import Registry, Subject


@dataclass
class ErasureReport:
    """Counts per model and per category; never a value, name or id of the subject."""

    subject_kind: str
    dry_run: bool
    by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    kept_for: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_kind": self.subject_kind,
            "dry_run": self.dry_run,
            "by_model": self.by_model,
            "by_category": self.by_category,
            "kept_for": self.kept_for,
        }


def erase(registry: Registry, subject: Subject, *, dry_run: bool) -> ErasureReport:
    raise NotImplementedError("erasure lands in the next commit")
