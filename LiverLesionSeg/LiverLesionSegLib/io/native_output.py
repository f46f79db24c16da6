"""What C libraries print straight to file descriptor 2 while they read or write a file (NIfTI's
"** ERROR: NWAD: wrote only ...", ITK's MetaImage reader's "ElementDataFile required and not
defined." and three lines more), held back while they work. Where the work succeeds it is passed
on afterwards; where it fails, the one-line error says what the lines said, and they are dropped."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from typing import Iterator


class HeldBack:
    """The lines held back so far (`lines`)."""

    def __init__(self, sink=None):
        self._sink = sink

    def lines(self) -> list[str]:
        if self._sink is None:
            return []
        self._sink.seek(0)
        text = self._sink.read().decode(errors="replace")
        self._sink.seek(0, os.SEEK_END)
        return [line.strip() for line in text.splitlines() if line.strip()]


_HOLDING = threading.RLock()  # descriptor 2 is the process's: one thread holds it at a time (nested holds in it)


@contextlib.contextmanager
def held_back(pass_on: bool = True) -> Iterator[HeldBack]:
    """Hold back what is written to file descriptor 2 within; pass it on afterwards (unless not
    `pass_on`: a test's or tool's look at it), or drop it where an exception ends the block."""
    if not _HOLDING.acquire(blocking=False):  # another thread holds descriptor 2: its hold takes what is printed
        yield HeldBack()
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        sink = tempfile.TemporaryFile()
    except (OSError, ValueError, AttributeError):  # no descriptor 2 (a GUI), or no room for a temporary file
        _HOLDING.release()
        yield HeldBack()
        return
    os.dup2(sink.fileno(), 2)
    failed = True
    try:
        yield HeldBack(sink)
        failed = False
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        _HOLDING.release()
        sink.seek(0)
        printed = sink.read()
        sink.close()
        if pass_on and not failed:  # (a `return` in this block would swallow the block's exception)
            with contextlib.suppress(OSError):
                os.write(2, printed)
