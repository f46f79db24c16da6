"""Training from the Slicer panel: the core's command line in a background process.

`TrainingProcess` runs `python -m LiverLesionSegLib train CASES... --out RUN --progress json`,
reads its JSON progress lines on reader threads (the panel polls from a timer and never blocks),
and cancels by terminating the process. Each run writes into a new folder, so no earlier model or
checkpoint is ever touched; the core writes checkpoints atomically, so a cancelled run keeps its
last good checkpoint. When a run ends well, its model joins the `ModelCatalogue`, a small JSON
file in the user's folder that the Segment panel reads to offer the model. No Qt, no `slicer`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from .errors import InputError
from .progress import epoch_line
from .io.atomic import atomic_write_text, new_folder

log = logging.getLogger("LiverLesionSeg")

CATALOGUE_FILE = "models.json"
RUNS_FOLDER = "runs"
LIBRARY_ROOT = Path(__file__).resolve().parent.parent  # the folder holding LiverLesionSegLib
STOP_GRACE_S = 10.0  # how long a terminated process may take before it is killed


def user_folder() -> Path:
    """Where training runs and the model catalogue live: $LIVERLESIONSEG_HOME, else
    ~/.liverlesionseg."""
    return Path(os.environ.get("LIVERLESIONSEG_HOME") or Path.home() / ".liverlesionseg")


def python_executable() -> str:
    """The interpreter for the training process: Slicer's `PythonSlicer` inside Slicer (whose
    `sys.executable` is the application), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


# --- the model catalogue -------------------------------------------------------------------------

@dataclass
class ModelEntry:
    name: str
    path: str
    created: str
    started_from: str = "scratch"  # "bundled", a checkpoint path, or "scratch"
    cases: list[str] = field(default_factory=list)
    validation: dict = field(default_factory=dict)  # the best epoch's validation Dice, when validated


class ModelCatalogue:
    """Trained models offered in the Segment panel, in a JSON file written atomically."""

    def __init__(self, path: Optional[str | os.PathLike] = None):
        self.path = Path(path) if path else user_folder() / CATALOGUE_FILE

    def models(self) -> list[ModelEntry]:
        """The entries whose model file still exists, newest last."""
        return [entry for entry in self._read() if Path(entry.path).is_file()]

    def add(self, entry: ModelEntry) -> None:
        entries = [e for e in self._read() if e.path != entry.path] + [entry]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"models": [asdict(e) for e in entries]}, indent=1))

    def _read(self) -> list[ModelEntry]:
        if not self.path.is_file():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [ModelEntry(**entry) for entry in data.get("models", [])]
        except (OSError, ValueError, TypeError) as exc:
            log.warning("The model list %s cannot be read (%s); it is ignored.", self.path, exc)
            return []


# --- settings -> command line --------------------------------------------------------------------

@dataclass
class TrainingSettings:
    """What the Training panel asks; `arguments` turns it into `liverlesionseg train` options."""

    cases: list[str]  # case folders or folders of cases (exported scene pairs included)
    validate: list[str] = field(default_factory=list)  # case names held out
    validate_every: int = 1  # epochs between validations (and each cycle's last)
    cycles: int = 3
    epochs_per_cycle: int = 5
    learning_rate: float = 1e-3
    bce_weight: float = 1.0
    dice_weight: float = 1.0
    tversky_weight: float = 1.0
    augment: bool = True
    start_from: str = "bundled"  # "bundled" (fine-tune the bundled model), "scratch", or a checkpoint path
    device: str = "auto"
    extra: list[str] = field(default_factory=list)  # further command-line options, as given

    def arguments(self, out_dir: str | os.PathLike) -> list[str]:
        if not self.cases:
            raise InputError("no training cases", hint="add case folders or scene pairs")
        args = ["train", *(str(Path(c).resolve()) for c in self.cases), "--out", str(out_dir), "--progress", "json",
                "--device", self.device, "--cycles", str(self.cycles), "--epochs", str(self.epochs_per_cycle),
                "--lr", repr(self.learning_rate), "--bce-weight", repr(self.bce_weight),
                "--dice-weight", repr(self.dice_weight), "--tversky-weight", repr(self.tversky_weight)]
        if self.validate:
            args += ["--validate", *self.validate, "--validate-every", str(self.validate_every)]
        if not self.augment:
            args.append("--no-augment")
        if self.start_from == "bundled":
            args += ["--init", "bundled"]
        elif self.start_from and self.start_from != "scratch":
            args += ["--init", str(Path(self.start_from).resolve())]
        return args + list(self.extra)


def new_run_folder(runs_dir: str | os.PathLike, label: str = "run") -> Path:
    """A folder that did not exist before, named by the time: runs never share a folder."""
    runs_dir = Path(runs_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    hint = "choose a folder you can write to"
    if runs_dir.is_relative_to(user_folder()):
        hint = "set LIVERLESIONSEG_HOME to a folder you can write to"
    return new_folder(runs_dir, (f"{stamp}-{label}" + (f"-{n}" if n else "") for n in range(1000)), hint)


# --- the process ---------------------------------------------------------------------------------

class TrainingProcess:
    """One training run in a child process.

    state: "ready" -> "running" -> "finished" | "failed" | "cancelled". `poll()` returns the
    events that arrived since the last call (lines that are not JSON come as `log` events) and,
    once the process has ended, settles the state; `model_entry` is set when it finished and its
    model was added to the catalogue.
    """

    def __init__(self, settings: TrainingSettings, runs_dir: Optional[str | os.PathLike] = None,
                 catalogue: Optional[ModelCatalogue] = None, python: Optional[str] = None, label: str = "run"):
        self.settings = settings
        self.runs_dir = Path(runs_dir) if runs_dir else user_folder() / RUNS_FOLDER
        self.catalogue = catalogue or ModelCatalogue()
        self.python = python or python_executable()
        self.label = label
        self.run_dir: Optional[Path] = None
        self.state = "ready"
        self.error_message: Optional[str] = None
        self.model_entry: Optional[ModelEntry] = None
        self.last_step: Optional[dict] = None
        self._process: Optional[subprocess.Popen] = None
        self._events: queue.Queue = queue.Queue()
        self._stderr_tail: deque = deque(maxlen=20)
        self._readers: list[threading.Thread] = []
        self._done_event: Optional[dict] = None
        self._error_event: Optional[dict] = None

    # --- control -------------------------------------------------------------------------------
    def start(self) -> "TrainingProcess":
        self.run_dir = new_run_folder(self.runs_dir, self.label)
        command = [self.python, "-m", "LiverLesionSegLib", *self.settings.arguments(self.run_dir)]
        atomic_write_text(self.run_dir / "command.json", json.dumps(command, indent=1))
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
                                         bufsize=1, env=self._environment(), cwd=str(self.run_dir),
                                         creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # Windows: no console
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()
        self.state = "running"
        return self

    def cancel(self) -> None:
        """Stop the run: the process is terminated (killed if it lingers). Its folder keeps the
        checkpoints written so far; nothing joins the catalogue."""
        if self._process is None or self._process.poll() is not None:
            return
        self.state = "cancelled"
        self._process.terminate()
        try:
            self._process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return self._process.poll() if self._process is not None else None

    def wait(self, timeout: Optional[float] = None) -> list[dict]:
        """Block until the process ends (scripts and tests); returns every event not yet polled."""
        if self._process is not None:
            self._process.wait(timeout)
        return self.poll()

    def poll(self) -> list[dict]:
        finished = self._process is not None and self._process.poll() is not None
        if finished:  # the readers drain what is left in the pipes once the process has ended
            for reader in self._readers:
                reader.join(5)
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        for event in events:
            self._note(event)
        if finished and self.state == "running":
            self._settle()
        return events

    # --- internals -----------------------------------------------------------------------------
    def _environment(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(LIBRARY_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _read_stdout(self) -> None:
        for line in self._process.stdout:
            line = line.strip()
            if line:
                self._events.put(parse_progress_line(line))

    def _read_stderr(self) -> None:
        for line in self._process.stderr:
            if line.strip():
                self._stderr_tail.append(line.rstrip())

    def _note(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "step":
            self.last_step = event
        elif kind == "done":
            self._done_event = event
        elif kind == "error":
            self._error_event = event

    def _settle(self) -> None:
        code = self._process.returncode
        if code == 0 and self._done_event and Path(self._done_event.get("model", "")).is_file():
            self.model_entry = self._register(Path(self._done_event["model"]))
            self.state = "finished"
            return
        self.state = "failed"
        if self._error_event:
            self.error_message = self._error_event.get("message", "training failed")
        else:
            tail = " ".join(list(self._stderr_tail)[-3:]) or "no message"
            self.error_message = f"training stopped with exit status {code}: {tail}"

    def _register(self, model_path: Path) -> ModelEntry:
        best = self._done_event.get("best") or {}
        entry = ModelEntry(name=f"{self.run_dir.name}", path=str(model_path),
                           created=datetime.datetime.now().isoformat(timespec="seconds"),
                           started_from=self.settings.start_from or "scratch",
                           cases=[Path(c).name for c in self.settings.cases], validation=dict(best))
        self.catalogue.add(entry)
        return entry


def parse_progress_line(line: str) -> dict:
    """One line of `--progress json` output as an event; anything else as a `log` event."""
    try:
        event = json.loads(line)
    except ValueError:
        return {"event": "log", "level": "info", "message": line}
    return event if isinstance(event, dict) and "event" in event else {"event": "log", "level": "info", "message": line}


def describe_event(event: dict) -> Optional[str]:
    """A line for the panel's log, or None for events shown otherwise (steps go to the bar)."""
    kind = event.get("event")
    if kind == "epoch":
        return epoch_line(event)
    if kind == "checkpoint":
        return f"checkpoint written: {event.get('path')}"
    if kind in ("log", "done", "error"):
        return event.get("message")
    if kind == "stage" and event.get("state") == "end":
        return f"{event.get('stage')}: {event.get('seconds', 0):.1f} s"
    return None


def format_eta(seconds: Optional[float]) -> str:
    if seconds is None:
        return "estimating"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def step_percent(step: dict) -> int:
    total = step.get("total_steps") or 0
    return int(100 * step.get("step", 0) / total) if total else 0


def step_text(step: dict) -> str:
    """The status line for a `step` event: where the run is, its loss and the time left."""
    return (f"Cycle {step.get('cycle')}, epoch {step.get('epoch')}, step {step.get('step')} of "
            f"{step.get('total_steps', '?')}; loss {step.get('loss', float('nan')):.4f}; "
            f"time left {format_eta(step.get('eta_s'))}")
