"""The project's own error types.

Every expected problem (a bad file, a mask that does not fit, a checkpoint of another model, an
output that cannot be written) is raised as one of these. Each renders as one line that names the
file, the problem and what to do, so that the command line can print it and exit non-zero and the
Slicer module can show it in a message box, without a traceback.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


def first_line(exc: BaseException, limit: int = 200) -> str:
    """What a library's exception says, fit for one line: its message's first line (at most `limit`
    characters), or its type's name when it says nothing."""
    return str(exc).splitlines()[0][:limit] if str(exc).strip() else type(exc).__name__


class LiverLesionSegError(Exception):
    """Base class: `path: problem. hint` on one line.

    Each kind has its own exit status on the command line (2 is argparse's usage error), so a
    script can tell the kinds apart: 3 input, 4 geometry, 5 model, 6 output, 7 training,
    8 resources, 130 cancelled, 1 an internal error.
    """

    exit_code = 3

    def __init__(self, problem: str, path: str | os.PathLike | None = None, hint: str | None = None):
        self.problem = _one_line(problem)
        self.path = str(path) if path is not None else None
        self.hint = _one_line(hint) if hint else None
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.problem.rstrip(".")
        if self.path:
            text = f"{self.path}: {text}"
        text += "."
        if self.hint:
            hint = self.hint.rstrip(".")
            text += " " + hint[:1].upper() + hint[1:] + "."
        return text


@contextlib.contextmanager
def renamed(inside: str, outside: str) -> Iterator[None]:
    """Errors raised within name `outside` where they would name `inside` (a temporary copy or link
    the user never saw)."""
    try:
        yield
    except LiverLesionSegError as exc:
        exc.problem = exc.problem.replace(inside, outside)
        exc.path = exc.path.replace(inside, outside) if exc.path else exc.path
        exc.hint = exc.hint.replace(inside, outside) if exc.hint else exc.hint
        exc.args = (str(exc),)
        raise


class InputError(LiverLesionSegError):
    """A file or folder that cannot be read as what it should be (no CT, unreadable, wrong kind)."""


class GeometryError(InputError):
    """Images or masks whose voxel grids do not fit (gaps, mismatched masks, 2-D images)."""

    exit_code = 4


class ModelError(LiverLesionSegError):
    """A model or checkpoint that cannot be used (another architecture, truncated, not a checkpoint)."""

    exit_code = 5


class OutputError(LiverLesionSegError):
    """An output that cannot be written (missing or read-only folder, full disk)."""

    exit_code = 6


class TrainingError(LiverLesionSegError):
    """Training cannot go on (no usable cases, a loss that is not finite)."""

    exit_code = 7


class ResourceError(LiverLesionSegError):
    """Not enough memory or device for the requested settings."""

    exit_code = 8


class Cancelled(LiverLesionSegError):
    """The user cancelled a running job; nothing was written."""

    exit_code = 130


def _one_line(text: str) -> str:
    return " ".join(str(text).split())

