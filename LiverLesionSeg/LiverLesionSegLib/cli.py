"""The command line: `liverlesionseg segment | measure | train | evaluate | plot`.

Expected problems end with one line on stderr (`liverlesionseg: error: FILE: problem. hint.`) and
a non-zero exit status; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .errors import LiverLesionSegError, OutputError, ResourceError
from .progress import JsonLinesProgress, NullProgress, Progress, TerminalProgress

log = logging.getLogger("LiverLesionSeg")


def main(argv: Optional[Sequence[str]] = None) -> int:
    _print_any_name()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: a mistyped command or option (2), or --help (0)
        if exc.code == 2 and _wants_json(sys.argv[1:] if argv is None else list(argv)):
            JsonLinesProgress(sys.stdout).emit({"event": "error", "exit_code": 2, "message": "the command line "
                                                "could not be read (a mistyped command or option); see stderr"})
        raise
    progress = make_progress(args.progress, args.verbose)
    with _signals_end_cleanly(), command_logging(args.verbose, progress):
        return _run(args, progress)


def _run(args: argparse.Namespace, progress: Progress) -> int:
    with warnings.catch_warnings(record=True) as caught:  # the libraries' Python warnings, told after the run
        code = _run_command(args, progress)
    if code == 0:  # after a failure, its one line says what went wrong
        _tell_library_warnings(caught)
    return code


def _tell_library_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    """Each distinct warning of a library (pydicom's "End of file reached before delimiter ... found in
    file ...") as one log line naming the library; Python prints two, its source line among them."""
    told = set()
    for warning in caught:
        parts = Path(warning.filename).parts
        at = next((n for n, part in enumerate(parts) if part in ("site-packages", "dist-packages")), None)
        library = parts[at + 1] if at is not None and at + 1 < len(parts) else Path(warning.filename).stem
        line = f"{' '.join(str(warning.message).split())} ({library})"
        if line not in told:
            told.add(line)
            log.warning("%s", line)


def _run_command(args: argparse.Namespace, progress: Progress) -> int:
    try:
        return args.run(args, progress)
    except LiverLesionSegError as exc:
        return fail(progress, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return fail(progress, "interrupted; outputs not finished were not written", 130)
    except BrokenPipeError:  # whoever read the output (`| head`, a script that died) stopped reading
        _discard_stdout()
        print("liverlesionseg: error: the program reading the output stopped reading (broken pipe); outputs not "
              "finished were not written", file=sys.stderr, flush=True)
        return OutputError.exit_code
    except MemoryError:
        return fail(progress, "not enough memory for this volume at these settings; close other programs or "
                              "use --batch-size 4", ResourceError.exit_code)
    except Exception as exc:  # a bug: one line, with the traceback only when asked for
        if args.debug:
            raise
        return fail(progress, f"internal error ({type(exc).__name__}: {exc}); run again with --debug for the "
                              f"traceback and report it", 1)


@contextlib.contextmanager
def _signals_end_cleanly():
    """Signals that would end the process abruptly end it cleanly instead, while a command runs.

    - SIGTERM (how the Slicer panel's Cancel and most job schedulers stop a process) and SIGHUP (the
      terminal closed, an SSH session dropped) are taken like Ctrl-C: the write in progress is
      abandoned, its temporary file removed, and the run ends with exit status 130 and one line.
      By default Python would die on the spot and leave the temporary file behind.
    - SIGXFSZ: a write past the file size limit (`ulimit -f`) kills the process by default, with
      no message. Ignored, the write fails with EFBIG, which ends as one line like any write error.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = {signal.SIGTERM: signal.default_int_handler}
    if hasattr(signal, "SIGHUP"):
        wanted[signal.SIGHUP] = signal.default_int_handler
    if hasattr(signal, "SIGXFSZ"):
        wanted[signal.SIGXFSZ] = signal.SIG_IGN
    previous = {number: signal.signal(number, handler) for number, handler in wanted.items()}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _wants_json(argv: list[str]) -> bool:
    """Whether the command line asks for `--progress json`, read before argparse could read it."""
    pairs = zip(argv, argv[1:] + [""])
    return "--progress=json" in argv or any(a == "--progress" and b == "json" for a, b in pairs)


def _print_any_name() -> None:
    """Standard output that cannot encode a name (an ASCII or Latin-1 terminal, and an output named
    "Patiënt_李") writes it with backslash escapes, as Python's standard error does, instead of
    failing after the outputs were written."""
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(errors="backslashreplace")


def _discard_stdout() -> None:
    """Standard output sent to the null device: the pipe is closed, and Python's own flush at exit
    would fail on it again with a traceback."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        descriptor = sys.stdout.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, descriptor)
        os.close(null)


def fail(progress: Progress, message: str, code: int) -> int:
    print(f"liverlesionseg: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    progress.emit({"event": "error", "message": message, "exit_code": code})
    return code


def make_progress(kind: str, verbose: bool = False) -> Progress:
    if kind == "json":
        return JsonLinesProgress(sys.stdout)
    if kind == "none":
        return NullProgress()
    return TerminalProgress(sys.stderr, verbose)


@contextlib.contextmanager
def command_logging(verbose: bool, progress: Progress):
    """The package's log lines on stderr (or as `log` events on a JSON progress stream) while a
    command runs; the logger as it was afterwards. Left in place, its handler would keep writing
    to this command's streams, which a caller of `main` (a test, a notebook) may have closed."""
    logger, nibabel = logging.getLogger("LiverLesionSeg"), logging.getLogger("nibabel")
    before = logger.level, logger.handlers[:], logger.propagate, nibabel.level
    nibabel.setLevel(logging.ERROR)  # its own lines on a header it fixes ("sform_code -1 not valid"): ours tell them
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.handlers.clear()
    logger.propagate = False
    if isinstance(progress, JsonLinesProgress):
        logger.addHandler(_ProgressLogHandler(progress))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    try:
        yield
    finally:
        logger.setLevel(before[0])
        logger.handlers[:], logger.propagate = before[1], before[2]
        nibabel.setLevel(before[3])


class _ProgressLogHandler(logging.Handler):
    """In --progress json mode, log lines travel as `log` events on the same stream."""

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.emit({"event": "log", "level": record.levelname.lower(), "message": record.getMessage()})


# --- the parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liverlesionseg", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"liverlesionseg {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="where the network runs (default: auto; a missing GPU falls back to the CPU)")
    common.add_argument("--progress", default="auto", choices=["auto", "bar", "json", "none"],
                        help="a terminal bar, or one JSON object per line on stdout (for the Slicer panel)")
    common.add_argument("--verbose", action="store_true", help="more log lines")
    common.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{segment,measure,train,evaluate,plot}")

    from .commands import evaluate, measure, plot, segment, train

    for command in (segment, measure, train, evaluate, plot):
        command.add_parser(sub, common)
    return parser


if __name__ == "__main__":
    sys.exit(main())
