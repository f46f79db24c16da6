"""The `liverlesionseg` console script and `python -m LiverLesionSegLib`: `cli.main` with Ctrl-C
taken cleanly before and after it, where `cli.main` cannot catch it itself.

Kept to a few modules of the standard library, so that an interrupt while the command line module
is still being imported is caught too, and a current folder deleted under the shell is named before
PyTorch's libraries fail to load.
"""

import os
import signal
import sys
from typing import NoReturn


def run() -> None:
    try:
        os.getcwd()
    except OSError:  # relative paths lead nowhere, and PyTorch's libraries would fail to load (an abort)
        _fail("the current folder no longer exists (deleted or moved while the shell was in it); cd to an "
              "existing folder and run again", 6)
    try:
        from .cli import main

        code = main()
    except KeyboardInterrupt:  # while importing, or reading the command line: nothing was written
        _fail("interrupted; nothing was written", 130)
    # The outputs are written: an interrupt now could only cut the interpreter's own teardown (about
    # a second with PyTorch loaded) and print a traceback over a finished run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _fail(message: str, code: int) -> NoReturn:
    print(f"liverlesionseg: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)
