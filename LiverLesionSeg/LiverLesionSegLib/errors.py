"""The project's own error types.

Every expected problem (a bad file, a mask that does not fit, a checkpoint of another model, an
output that cannot be written) is raised as one of these. Each renders as one line that names the
file, the problem and what to do, so that the command line can print it and exit non-zero and the
Slicer module can show it in a message box, without a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Iterator


def first_line(exc: BaseException, limit: int = 200) -> str:
    """What a library's exception says, fit for one line: its message's first line (at most `limit`
    characters, a cut marked with "..."), an attribute or key missing from a damaged file's header
    named as such, or its type's name when it says nothing."""
    text = _missing(exc) or _one_number_for_several(exc) or str(exc)
    if not text.strip():
        return type(exc).__name__
    line = text.splitlines()[0]
    return line if len(line) <= limit else line[:limit - 3] + "..."


def listed(items, shown: int = 5) -> str:
    """`items` as a message lists them: the first `shown`, then how many more."""
    items = [str(item) for item in items]
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _missing(exc: BaseException) -> str | None:
    """"no X" for Python's words on a missing attribute ("'Dataset' object has no attribute 'X'") or
    a missing DICOM element (a KeyError of pydicom's tag, named with its keyword); None for the rest."""
    if isinstance(exc, AttributeError):
        # pydicom's and highdicom's datasets only: elsewhere the words may tell a fault of the code's own
        found = re.fullmatch(r"'(?:FileDataset|Dataset|Segmentation|Image)' object has no attribute '(\w+)'", str(exc))
        return f"no {found.group(1)}" if found else None
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        from pydicom.datadict import keyword_for_tag  # imported here: this module is the package's base
        from pydicom.tag import BaseTag

        if isinstance(exc.args[0], BaseTag):
            return f"no element {exc.args[0]} {keyword_for_tag(exc.args[0])}".rstrip()
    return None


def _one_number_for_several(exc: BaseException) -> str | None:
    """Python's words on indexing one number ("'DSfloat' object is not subscriptable"), as a damaged
    header's single value where a position, orientation or spacing holds several."""
    if isinstance(exc, TypeError) and re.fullmatch(r"'(DSfloat|DSdecimal|IS|float|int)' object is not subscriptable",
                                                   str(exc)):
        return "a single number where the header holds several (a position, orientation or spacing)"
    return None


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
    """Errors raised and warnings logged within name `outside` where they would name `inside` (a
    temporary copy or link the user never saw)."""
    def rename_record(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if inside in message:
            record.msg, record.args = message.replace(inside, outside), ()
        return True

    logger = logging.getLogger("LiverLesionSeg")
    logger.addFilter(rename_record)
    try:
        yield
    except LiverLesionSegError as exc:
        exc.problem = exc.problem.replace(inside, outside)
        exc.path = exc.path.replace(inside, outside) if exc.path else exc.path
        exc.hint = exc.hint.replace(inside, outside) if exc.hint else exc.hint
        exc.args = (str(exc),)
        raise
    finally:
        logger.removeFilter(rename_record)


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


def refuse_an_empty_file(path: Path, error: type[LiverLesionSegError] = InputError,
                         hint: str = "copy or export it again") -> None:
    """An empty file (0 bytes) told as such: each reader told it in its own words ("Empty file: …",
    "header too small", "no image reader recognises its header", "is not a zip file")."""
    if path.is_file() and path.stat().st_size == 0:
        raise error("is an empty file (0 bytes): its copy, download or export stopped before any data", path,
                    hint)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())

