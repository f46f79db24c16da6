"""A case found on disk and not yet read (`cases.find_cases` finds them, `cases.load_case` reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CaseRef:
    """A case found on disk, not yet read: `load_case` reads it."""

    name: str
    kind: str  # one of cases.KINDS
    paths: tuple[Path, ...]  # the case folder, or (image, labels) for an image pair
