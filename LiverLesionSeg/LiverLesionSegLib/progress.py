"""Progress as a stream of events.

An event is a plain dict with an "event" key: `stage` (a named stage of segmentation and its
duration), `step` (a training step: cycle, epoch, step, loss, lr, eta_s), `epoch` (validation Dice),
`checkpoint`, `log`, `done`, `error`; during segmentation also `progress` (slices done of a network
pass, and with several passes the `fraction` of the stage done: `PartProgress`). The command line
renders them as a terminal bar or as one JSON object per line (`--progress json`); the Slicer
training panel reads those lines.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, TextIO

log = logging.getLogger("LiverLesionSeg")

Event = dict


def epoch_line(epoch: Event) -> str:
    """An epoch event as the terminal and the Slicer panel show it: its loss, and its validation Dice
    where there was validation (the liver's alone where no validation case's lesions are segmented)."""
    line = f"cycle {epoch.get('cycle')} epoch {epoch.get('epoch')}: loss {epoch.get('train_loss', math.nan):.4f}"
    lesion, liver = epoch.get("val_lesion_dice"), epoch.get("val_liver_dice")
    if liver is None:
        return line
    return line + (f", validation lesion Dice {lesion:.3f}, liver Dice {liver:.3f}" if lesion is not None else
                   f", validation liver Dice {liver:.3f} (no validation case's lesions are segmented)")


class Progress:
    """Base sink: receives events; `cancelled` lets a caller stop a running job between steps."""

    def __init__(self) -> None:
        self._cancel = threading.Event()

    def emit(self, event: Event) -> None:  # pragma: no cover - overridden
        pass

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @contextmanager
    def stage(self, name: str, timings: Optional[dict] = None) -> Iterator[None]:
        """Time a named stage and report it as a `stage` event (and into `timings`)."""
        self.emit({"event": "stage", "stage": name, "state": "start"})
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + seconds
        self.emit({"event": "stage", "stage": name, "state": "end", "seconds": round(seconds, 3)})

    def part(self, start: float, end: float) -> "Progress":
        """This job's events, from a pass that is the share `start` to `end` (0 to 1) of its stage."""
        return PartProgress(self, start, end)


@contextmanager
def timed(name: str, timings: dict) -> Iterator[None]:
    """Add the block's duration to `timings[name]`, without an event (for a stage's pieces that
    alternate many times, which as stage events would send a progress bar back and forth)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


class NullProgress(Progress):
    pass


class PartProgress(Progress):
    """One pass of several within a stage (the search for the liver, then its box): the events go on
    to `outer` with the `fraction` of the whole stage done (a `progress` event's done/total, a stage's
    start or end, mapped into the share `start` to `end`), so that a bar moves on through the passes
    instead of starting again at each. Nests: a part of a part maps into its outer part's share.
    Cancelling either cancels both."""

    def __init__(self, outer: Progress, start: float, end: float) -> None:
        super().__init__()
        self.outer, self.start, self.end = outer, start, end

    def emit(self, event: Event) -> None:
        kind = event.get("event")
        if (kind == "progress" and event.get("total")) or kind == "stage":
            own = event["done"] / event["total"] if kind == "progress" else float(event["state"] == "end")
            event = {**event, "fraction": self.start + (self.end - self.start) * event.get("fraction", own)}
        self.outer.emit(event)

    def cancel(self) -> None:
        self.outer.cancel()

    @property
    def cancelled(self) -> bool:
        return self.outer.cancelled


class CallbackProgress(Progress):
    def __init__(self, callback: Callable[[Event], None]) -> None:
        super().__init__()
        self.callback = callback

    def emit(self, event: Event) -> None:
        self.callback(event)


class JsonLinesProgress(Progress):
    """One JSON object per line, flushed at once (a reader in another process sees it live)."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, event: Event) -> None:
        self.stream.write(json.dumps(_finite(event), separators=(",", ":")) + "\n")
        self.stream.flush()


class TerminalProgress(Progress):
    """A tqdm bar for training steps; epochs, checkpoints and log events as short lines on stderr,
    and (verbose) each stage's duration as it ends."""

    def __init__(self, stream: TextIO = sys.stderr, verbose: bool = False) -> None:
        super().__init__()
        self.stream = stream
        self.verbose = verbose
        self._bar = None

    def emit(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "step":
            self._step(event)
        elif kind == "epoch":
            self._write(epoch_line(event))
        elif kind == "stage" and event.get("state") == "end" and self.verbose:
            self._write(f"{event['stage']}: {event['seconds']:.2f} s")
        elif kind == "log":
            self._write(event["message"])
        elif kind == "checkpoint":
            self._write(f"checkpoint {event['path']}")
        if kind in ("done", "error") and self._bar is not None:
            self._bar.close()
            self._bar = None

    def _step(self, event: Event) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=event.get("total_steps"), file=self.stream, unit="step", dynamic_ncols=True)
        self._bar.n = event["step"]
        self._bar.set_postfix(cycle=event["cycle"], epoch=event["epoch"], loss=f"{event['loss']:.4f}",
                              refresh=False)
        self._bar.refresh()

    def _write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


def format_timings(timings: dict[str, float]) -> str:
    """'read 0.21 s, model 0.70 s, ...; total 1.40 s' for the stage durations of a run."""
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
    return f"{stages}; total {sum(timings.values()):.2f} s"


def is_finite_number(value) -> bool:
    """A value read from an event or a run's history is a usable number: a real number (not a
    bool, not NaN or infinite; JSON brings NaN as null)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def number_or_nan(value) -> float:
    """A value read from an event as a float, NaN where it is no usable number (a gap in a plot)."""
    return float(value) if is_finite_number(value) else math.nan


def _finite(event: Event) -> Event:
    """JSON has no NaN: non-finite numbers travel as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in event.items()}
