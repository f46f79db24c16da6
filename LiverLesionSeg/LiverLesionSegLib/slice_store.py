"""Training slices kept on disk, so that a dataset of a thousand CTs trains in a laptop's memory.

Each training case's views (uint8 slices and targets at the network's size, 48 KiB a slice and
view at 128), and a validation case's whole CT and masks, are written to a folder inside the run
folder as the case is prepared, and memory-mapped back: the operating system keeps in memory what
fits and reads the rest as it is used.
The folder goes when the run ends, however it ends but a kill; a run into the folder (which holds
its lock) removes one that a killed run left.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from .dataset import PreparedCase, View
from .errors import ResourceError
from .io.atomic import folder_error, write_failure_errno
from .memory import size_text

log = logging.getLogger("LiverLesionSeg")

STORE_FOLDER = ".training-slices"
# Disk space left free for the run's checkpoints (each with its optimizer state about 3 x the model).
CHECKPOINT_ROOM = 512 * 2**20


class SliceStore:
    """Writes the arrays of prepared cases to `folder` and gives them back memory-mapped."""

    def __init__(self, folder: Path, checkpoint_room: int = CHECKPOINT_ROOM):
        self.folder = folder
        self.checkpoint_room = checkpoint_room
        self.kept: list[PreparedCase] = []
        self.bytes = 0

    def keep(self, case: PreparedCase) -> PreparedCase:
        """`case` with its arrays on disk (read-only memory maps), its arrays in memory let go: its views,
        and a validation case's whole CT and masks."""
        needed = sum(array.nbytes for array in _arrays(case))
        free = shutil.disk_usage(self.folder).free
        if needed + self.checkpoint_room > free:
            raise self._no_room(case, f"they need about {size_text(needed)}, and {size_text(self.checkpoint_room)} "
                                      f"more is kept for the run's checkpoints; {size_text(free)} is free")
        number = len(self.kept)
        case.views = [View(self._write(view.stack, f"{number:06d}-{v}-slices.npy", case),
                           self._write(view.targets, f"{number:06d}-{v}-targets.npy", case), view.slice_spacing_mm)
                      for v, view in enumerate(case.views)]
        if case.ct is not None:
            case.ct = case.ct.with_array(self._write(case.ct.array, f"{number:06d}-ct.npy", case))
            case.liver = self._write(case.liver, f"{number:06d}-liver.npy", case)
            case.lesion = self._write(case.lesion, f"{number:06d}-lesion.npy", case)
        self.kept.append(case)
        self.bytes += needed
        return case

    def _write(self, array: np.ndarray, name: str, case: PreparedCase) -> np.ndarray:
        path = self.folder / name
        try:
            with open(path, "wb") as f:
                np.save(f, array, allow_pickle=False)
        except OSError as exc:
            raise self._no_room(case, _why(exc, path)) from None
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def _no_room(self, case: PreparedCase, why: str) -> ResourceError:
        before = f" (the slices of the cases read before take {size_text(self.bytes)})" if self.kept else ""
        return ResourceError(f"the slices of case {case.name} cannot be kept on disk in the run folder: {why}",
                             self.folder.parent, f"free some disk space, or give --out a folder on a disk with more "
                             f"room{before}")

    def close(self) -> None:
        """Let go of the memory maps (a mapped file cannot be removed on Windows), then remove the folder."""
        for case in self.kept:
            case.views, case.ct, case.liver, case.lesion = [], None, None, None
        self.kept = []
        shutil.rmtree(self.folder, ignore_errors=True)


def _arrays(case: PreparedCase) -> list[np.ndarray]:
    volumes = [case.ct.array, case.liver, case.lesion] if case.ct is not None else []
    return [array for view in case.views for array in (view.stack, view.targets)] + volumes


@contextlib.contextmanager
def slices_on_disk(run_folder: Path) -> Iterator[SliceStore]:
    """A `SliceStore` in `run_folder` (whose lock the caller holds), removed when the block ends."""
    folder = Path(run_folder) / STORE_FOLDER
    if folder.exists():
        log.info("Removing %s, left by a training run that was stopped.", folder)
        shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir()
    except OSError as exc:
        raise folder_error(folder, exc, "give --out a folder you can write to") from None
    store = SliceStore(folder)
    try:
        yield store
    finally:
        store.close()


def _why(exc: OSError, path: Path) -> str:
    code = exc.errno or write_failure_errno(path)  # numpy's writer may say no more than "Success"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if code == errno.EFBIG:
        return "a file would be larger than allowed here (the file size limit, ulimit -f)"
    return exc.strerror or str(exc) or type(exc).__name__

