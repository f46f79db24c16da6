"""Segmentation for the Slicer panel: the core run in a background thread, so that the
application stays responsive and the run can be cancelled.

The panel copies the input node into a `Volume` (on the main thread), starts a
`SegmentationJob`, polls it from a timer for progress events, and when it has finished writes the
result into the scene (`mrml.write_outputs`, main thread again). A cancelled or failed job has
touched nothing in the scene. No Qt and no `slicer` here.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Optional, Sequence

from .errors import Cancelled, LiverLesionSegError
from .progress import CallbackProgress, Progress
from .volume import Volume

log = logging.getLogger("LiverLesionSeg")

BUNDLED = "bundled"  # model choice meaning the model shipped with the extension

# Stages of a segmentation as the panel shows them, in order, with their share of the progress bar.
STAGES = {"load model": (0, 10), "preprocess": (10, 20), "model": (20, 85), "postprocess": (85, 100)}


def model_file(model: str | os.PathLike) -> Optional[Path]:
    """The checkpoint file for a model choice: None for `BUNDLED` (or empty), else the file's path."""
    if not str(model) or str(model) == BUNDLED:
        return None
    return Path(model)


def model_names(model: str | os.PathLike, vote_models: Sequence[str | os.PathLike] = ()) -> list[str]:
    """The file names of the model and the models that vote with it, as outputs name them."""
    from .resources import bundled_model_path

    return [(model_file(m) or bundled_model_path()).name for m in (model, *vote_models)]


def run_segmentation(volume: Volume, model: str | os.PathLike = BUNDLED, device: str = "auto",
                     lesion_threshold: Optional[float] = None, progress: Optional[Progress] = None,
                     keep_edge_lesions: bool = False, keep_fluid_lesions: bool = False,
                     keep_liver_density_lesions: bool = False, vote_models: Sequence[str | os.PathLike] = ()):
    """Load the model and segment `volume` with the core: returns (`infer.Segmentation`, device).
    With `vote_models` (checkpoint files), they segment it too and the result is the majority vote
    of all of them (`ensemble.segment_with_models`), the settings below applied to each.

    A missing GPU falls back to the CPU (`model.choose_device` says so in the log), and a GPU out
    of memory to smaller batches, then the CPU (`infer.predict_stack`). `keep_edge_lesions` turns
    off the clean-up rule that drops lesions with little liver around them, `keep_fluid_lesions`
    the one that drops lesions of fluid density, `keep_liver_density_lesions` the one that drops
    lesions of the liver's density.
    """
    from .ensemble import check_models_fit, segment_with_models
    from .model import choose_device
    from .progress import NullProgress, format_timings
    from .resources import load_model

    progress = progress or NullProgress()
    chosen = choose_device(device)
    progress.emit({"event": "log", "level": "info", "message": f"Running on {chosen.type.upper()}."})
    timings: dict[str, float] = {}
    models = [model, *vote_models]
    with progress.stage("load model", timings):
        checkpoints = [load_model(model_file(m), chosen) for m in models]
    for name, checkpoint in zip(models, checkpoints):
        config = checkpoint.config.inference
        if lesion_threshold is not None:
            config.lesion_threshold = float(lesion_threshold)
        if keep_edge_lesions:
            config.min_liver_around_lesion = 0.0
        if keep_fluid_lesions:
            config.min_lesion_median_hu = None
        if keep_liver_density_lesions:
            config.min_lesion_contrast_hu = None
        checkpoint.config.validated(str(name))
    check_models_fit(volume, checkpoints, volume.source)
    if len(models) > 1:
        progress.emit({"event": "log", "level": "info", "message": f"Majority vote of {len(models)} models."})
    result = segment_with_models(volume, checkpoints, chosen, progress)
    result.timings = {**timings, **result.timings}
    # As a log event: the panel shows it in its status line and Slicer's log keeps it.
    progress.emit({"event": "log", "level": "info", "message": f"Segmented in {format_timings(result.timings)}."})
    return result, chosen


def progress_percent(event: dict) -> Optional[int]:
    """Where a progress event puts the bar (0-100), or None when it does not move it."""
    stage = event.get("stage")
    if stage not in STAGES:
        return None
    start, end = STAGES[stage]
    kind = event.get("event")
    if kind == "progress" and event.get("total"):
        done = event["done"] / event["total"]
    elif kind == "stage":
        done = float(event.get("state") == "end")
    else:
        return None
    done = event.get("fraction", done)  # from one pass of several (progress.PartProgress)
    return int(start + (end - start) * done)


class ProgressBar:
    """Where the segmentation's bar stands (0-100) as its events arrive: `progress_percent`, but never
    moving back, as a stage that comes round again (the liver's box prepared after the search for the
    liver) would send it."""

    def __init__(self) -> None:
        self.percent = 0

    def update(self, event: dict) -> Optional[int]:
        """The bar's new position, or None when the event does not concern it."""
        percent = progress_percent(event)
        if percent is None:
            return None
        self.percent = max(self.percent, percent)
        return self.percent


STAGE_NAMES = {"load model": "Loading the model", "preprocess": "Preparing the slices",
               "model": "Running the network", "postprocess": "Building the masks"}


def stage_text(event: dict) -> str:
    """The status line for a stage or progress event: "Running the network: 12 of 40 slices"."""
    text = STAGE_NAMES.get(event.get("stage"), event.get("stage", ""))
    if event.get("event") == "progress" and event.get("total"):
        text += f": {event['done']} of {event['total']} slices"
    return text


class SegmentationJob:
    """One segmentation in a background thread.

    `poll()` returns the events that arrived since the last call (progress, stages, log lines);
    `progress_bar.update(event)` places a bar by them. When `done`, either `result` (an
    `infer.Segmentation`) or `error` is set. `cancel()` asks the core to stop at the next batch of
    slices; the job then ends with a `Cancelled` error.
    """

    def __init__(self, volume: Volume, model: str | os.PathLike = BUNDLED, device: str = "auto",
                 lesion_threshold: Optional[float] = None, keep_edge_lesions: bool = False,
                 keep_fluid_lesions: bool = False, keep_liver_density_lesions: bool = False,
                 vote_models: Sequence[str | os.PathLike] = ()):
        self.volume = volume
        self.model = model
        self.device = device
        self.lesion_threshold = lesion_threshold
        self.keep_edge_lesions = keep_edge_lesions
        self.keep_fluid_lesions = keep_fluid_lesions
        self.keep_liver_density_lesions = keep_liver_density_lesions
        self.vote_models = list(vote_models)
        self.result = None
        self.device_used = None
        self.progress_bar = ProgressBar()
        self.error: Optional[BaseException] = None
        self._events: queue.Queue = queue.Queue()
        self._progress = CallbackProgress(self._events.put)
        self._thread = threading.Thread(target=self._run, name="LiverLesionSeg segmentation", daemon=True)

    def start(self) -> "SegmentationJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._progress.cancel()

    @property
    def cancelled(self) -> bool:
        return self._progress.cancelled

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def wait(self, timeout: Optional[float] = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def poll(self) -> list[dict]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def _run(self) -> None:
        handler = _QueueLogHandler(self._progress)
        log.addHandler(handler)
        try:
            if self.cancelled:
                raise Cancelled("segmentation cancelled; nothing was written")
            self.result, self.device_used = run_segmentation(self.volume, self.model, self.device,
                                                             self.lesion_threshold, self._progress,
                                                             self.keep_edge_lesions, self.keep_fluid_lesions,
                                                             self.keep_liver_density_lesions, self.vote_models)
            if self.cancelled:  # cancelled after the last batch: still nothing reaches the scene
                self.result = None
                raise Cancelled("segmentation cancelled; nothing was written")
        except LiverLesionSegError as exc:
            self.error = exc
        except MemoryError:
            self.error = LiverLesionSegError("not enough memory to segment this volume",
                                             hint="close other programs or choose the CPU")
        except Exception as exc:  # a bug: kept whole, for the panel's detailed message
            self.error = exc
        finally:
            log.removeHandler(handler)


class _QueueLogHandler(logging.Handler):
    """The core's log lines (device fallbacks, out-of-memory retries) as `log` events."""

    def __init__(self, progress: Progress):
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.emit({"event": "log", "level": record.levelname.lower(), "message": record.getMessage()})
