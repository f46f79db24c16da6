"""The pictures: training loss, validation Dice, predictions slice by slice, and a CT overlay.

Every picture is a standalone `matplotlib.figure.Figure` drawn on an Agg canvas: pyplot and its
global list of figures are never used, so nothing leaks into Slicer's or a notebook's matplotlib
state, and the backend is never switched. PNGs are written atomically (a temporary file beside
the target, renamed on success), so a failed plot leaves no partial file.

Slices are shown as stored: array row j downwards, column i to the right, which for axial LPS
data is the radiological view (patient left on the right of the screen), with the pixel aspect of
the spacing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np


def _not_about_its_settings_folder(record: logging.LogRecord) -> bool:
    return record.funcName != "_get_config_or_cache_dir"


# With a read-only home (a container, a cluster node) matplotlib logs two lines as it imports, that it
# made itself a temporary settings folder, and then goes on well: on a user's terminal they read as
# a problem with the run.
logging.getLogger("matplotlib").addFilter(_not_about_its_settings_folder)

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402  (after the filter)
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .errors import GeometryError, InputError, OutputError
from .io.atomic import atomic_path, check_writable
from .progress import is_finite_number, number_or_nan
from .volume import Volume

CT_WINDOW_HU = (-100.0, 250.0)
LIVER_COLOUR = "#2ca02c"
LESION_COLOUR = "#ff3b30"
DPI = 100
PANEL_INCHES = 3.2


# --- training curves -----------------------------------------------------------------------------

def plot_loss(history: Mapping[str, Any], path: str | os.PathLike, log_scale: bool = False) -> Path:
    """Training loss per step, the mean per epoch over it, and dashed lines at cycle boundaries."""
    check_picture_path(path)
    steps = finite_loss_steps(history)
    if not steps:
        raise InputError("the training history holds no step losses", hint="plot a history from a training run")
    x = _positions([s.get("step") for s in steps])
    loss = np.array([float(s["loss"]) for s in steps])

    figure = _new_figure(8, 4.5)
    axes = figure.add_subplot()
    axes.plot(x, loss, lw=0.8, alpha=0.6, color="tab:blue", label="loss per step")
    epoch_x, epoch_loss = _epoch_means(steps, x, loss)
    axes.plot(epoch_x, epoch_loss, "o-", ms=3, color="tab:orange", label="epoch mean")
    _mark_cycles(axes, x, [s.get("cycle") for s in steps])
    if log_scale:
        axes.set_yscale("log", nonpositive="mask")
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    return _save(figure, path)


def finite_loss_steps(history: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The steps of a training history that hold a finite loss (an edited or cut history may hold
    others, or entries that are no steps at all)."""
    steps = history.get("steps")
    if not isinstance(steps, list):
        return []
    return [s for s in steps if isinstance(s, Mapping) and is_finite_number(s.get("loss"))]


def history_epochs(history: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The epochs of a training history (an edited one may hold null, or entries that are no epochs)."""
    epochs = history.get("epochs")
    return [e for e in epochs if isinstance(e, Mapping)] if isinstance(epochs, list) else []


def has_validation_dice(history: Mapping[str, Any]) -> bool:
    """Whether an epoch of `history` holds a validation Dice that is a finite number."""
    return any(is_finite_number(e.get(key)) for e in history_epochs(history)
               for key in ("val_lesion_dice", "val_liver_dice"))


def plot_dice(history: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Validation lesion and liver Dice per epoch, dashed lines at cycle boundaries.

    Epochs without validation (None) leave gaps; a history without any is an `InputError`.
    """
    check_picture_path(path)
    epochs = history_epochs(history)
    lesion = np.array([number_or_nan(e.get("val_lesion_dice")) for e in epochs], dtype=float)
    liver = np.array([number_or_nan(e.get("val_liver_dice")) for e in epochs], dtype=float)
    if not (np.isfinite(lesion).any() or np.isfinite(liver).any()):
        raise InputError("the training history holds no validation Dice",
                         hint="train with validation cases to get this plot")
    x = _positions([e.get("epoch") for e in epochs])

    figure = _new_figure(8, 4.5)
    axes = figure.add_subplot()
    axes.plot(x, lesion, "o-", ms=3, color=LESION_COLOUR, label="lesion Dice")
    axes.plot(x, liver, "s-", ms=3, color=LIVER_COLOUR, label="liver Dice")
    _mark_cycles(axes, x, [e.get("cycle") for e in epochs])
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation Dice")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return _save(figure, path)


def _epoch_means(steps: Sequence[Mapping[str, Any]], x: np.ndarray,
                 loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss of each (cycle, epoch), placed at the mean position of the epoch's steps."""
    groups: dict[tuple, list[int]] = {}
    for index, step in enumerate(steps):
        groups.setdefault((step.get("cycle"), step.get("epoch")), []).append(index)
    centres = [x[indices].mean() for indices in groups.values()]
    means = [loss[indices].mean() for indices in groups.values()]
    return np.array(centres), np.array(means)


def _mark_cycles(axes, x: np.ndarray, cycles: Sequence[Any]) -> None:
    """Dashed vertical lines half-way between the last point of a cycle and the first of the next."""
    labelled = False
    for index in range(1, len(cycles)):
        if cycles[index] != cycles[index - 1]:
            axes.axvline((x[index - 1] + x[index]) / 2, color="grey", ls="--", lw=0.9,
                         label=None if labelled else "cycle boundary")
            labelled = True


def _positions(values: Sequence[Any]) -> np.ndarray:
    """The values themselves when they are numbers that increase, else 1, 2, 3 ... (for example
    epoch numbers that restart with every cycle)."""
    if values and all(is_finite_number(v) for v in values):
        array = np.array(values, dtype=float)
        if np.all(np.diff(array) > 0):
            return array
    return np.arange(1, len(values) + 1, dtype=float)


# --- images --------------------------------------------------------------------------------------

def plot_predictions(ct: Volume, truth_lesion: Optional[Volume], truth_liver: Optional[Volume],
                     pred_lesion: Volume, pred_liver: Optional[Volume], probability: Volume,
                     path: str | os.PathLike, slices: Optional[Sequence[int]] = None, n: int = 4) -> Path:
    """One row per slice: CT, ground truth, prediction, lesion probability (with a colour bar).

    Default slices (`choose_slices`): the `n` with the largest true lesion area, else the largest
    predicted lesion area, else `n` slices spread over the middle of the liver.
    """
    check_picture_path(path)
    _check_grids(ct, truth_lesion=truth_lesion, truth_liver=truth_liver, pred_lesion=pred_lesion,
                 pred_liver=pred_liver, probability=probability)
    if slices is None:
        slices = choose_slices(ct.shape[0], n, _array(truth_lesion), _array(pred_lesion),
                               _array(truth_liver) if truth_liver is not None else _array(pred_liver))
    slices = check_slices(slices, ct.shape[0])
    aspect = ct.spacing[1] / ct.spacing[0]

    figure = _new_figure(4 * PANEL_INCHES + 0.6, len(slices) * PANEL_INCHES)
    grid = figure.subplots(len(slices), 4, squeeze=False)
    for row, k in zip(grid, slices):
        _show_ct(row[0], ct.array[k], aspect, f"CT, slice {k}")
        _show_ct(row[1], ct.array[k], aspect,
                 f"ground truth, slice {k}" if truth_lesion is not None or truth_liver is not None
                 else f"no ground truth, slice {k}")
        _draw_masks(row[1], _slice(truth_liver, k), _slice(truth_lesion, k), aspect)
        _show_ct(row[2], ct.array[k], aspect, f"prediction, slice {k}")
        _draw_masks(row[2], _slice(pred_liver, k), _slice(pred_lesion, k), aspect)
        heatmap = row[3].imshow(probability.array[k], cmap="inferno", vmin=0.0, vmax=1.0, aspect=aspect,
                                interpolation="nearest")
        _tidy(row[3], f"lesion probability, slice {k}")
        figure.colorbar(heatmap, ax=row[3], fraction=0.046, pad=0.04)
    figure.legend(handles=_legend_handles(), loc="lower center", ncol=2, frameon=False)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(figure, path)


def plot_overlay(ct: Volume, liver: Optional[Volume], lesion: Optional[Volume], path: str | os.PathLike,
                 slice_index: Optional[int] = None) -> Path:
    """One CT slice with the liver and lesion drawn over it (filled and outlined).

    Default slice: the largest lesion area, else the largest liver area, else the middle slice.
    """
    check_picture_path(path)
    _check_grids(ct, liver=liver, lesion=lesion)
    if slice_index is None:
        slice_index = _largest_area_slice(ct.shape[0], _array(lesion), _array(liver))
    (k,) = check_slices([slice_index], ct.shape[0])
    aspect = ct.spacing[1] / ct.spacing[0]

    figure = _new_figure(6, 6.4)
    axes = figure.add_subplot()
    _show_ct(axes, ct.array[k], aspect, f"slice {k}")
    _draw_masks(axes, _slice(liver, k), _slice(lesion, k), aspect)
    axes.legend(handles=_legend_handles(), loc="lower right", fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def choose_slices(depth: int, n: int, truth_lesion: Optional[np.ndarray] = None,
                  pred_lesion: Optional[np.ndarray] = None, liver: Optional[np.ndarray] = None) -> list[int]:
    """Up to `n` slice indices, ascending: the largest true lesion areas, else the largest predicted
    lesion areas (slices with none left out), else `n` slices evenly spread inside the liver's
    slice range (ends excluded), else inside the whole volume."""
    if n < 1:
        raise InputError(f"cannot show {n} slices", hint="ask for at least one")
    for lesion in (truth_lesion, pred_lesion):
        area = _areas(lesion)
        if area is not None and area.any():
            largest = np.argsort(-area, kind="stable")[:n]
            return sorted(int(k) for k in largest if area[k] > 0)
    area = _areas(liver)
    present = np.flatnonzero(area) if area is not None else np.array([], dtype=int)
    first, last = (present[0], present[-1]) if present.size else (0, depth - 1)
    spread = np.linspace(first, last, n + 2)[1:-1]
    return sorted({int(round(k)) for k in spread})


def _largest_area_slice(depth: int, *masks: Optional[np.ndarray]) -> int:
    for mask in masks:
        area = _areas(mask)
        if area is not None and area.any():
            return int(np.argmax(area))
    return depth // 2


def _areas(mask: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Set pixels per k slice."""
    return None if mask is None else np.count_nonzero(np.asarray(mask) > 0, axis=(1, 2))


def _show_ct(axes, ct_slice: np.ndarray, aspect: float, title: str) -> None:
    axes.imshow(ct_slice, cmap="gray", vmin=CT_WINDOW_HU[0], vmax=CT_WINDOW_HU[1], aspect=aspect,
                interpolation="nearest")
    _tidy(axes, title)


def _draw_masks(axes, liver: Optional[np.ndarray], lesion: Optional[np.ndarray], aspect: float) -> None:
    """Translucent fill and an outline per mask; lesion over liver."""
    height, width = axes.images[0].get_array().shape
    for mask, colour in ((liver, LIVER_COLOUR), (lesion, LESION_COLOUR)):
        if mask is None or not mask.any():
            continue
        axes.imshow(np.ma.masked_where(~mask, mask), cmap=ListedColormap([colour]), alpha=0.35,
                    aspect=aspect, interpolation="nearest")
        axes.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.0)
    # contour() autoscales to pixel centres; keep the whole image in view.
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)


def _tidy(axes, title: str) -> None:
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])


def _legend_handles() -> list[Patch]:
    return [Patch(color=LIVER_COLOUR, alpha=0.6, label="liver"), Patch(color=LESION_COLOUR, alpha=0.6, label="lesion")]


def _slice(volume: Optional[Volume], k: int) -> Optional[np.ndarray]:
    return None if volume is None else np.asarray(volume.array[k]) > 0


def _array(volume: Optional[Volume]) -> Optional[np.ndarray]:
    return None if volume is None else volume.array


def _check_grids(ct: Volume, **others: Optional[Volume]) -> None:
    for name, volume in others.items():
        if volume is not None and volume.shape != ct.shape:
            raise GeometryError(f"the {name.replace('_', ' ')} image (shape {volume.shape}) does not lie on the "
                                f"CT's grid (shape {ct.shape})", volume.source or None)


def check_slices(slices: Sequence[int], depth: int) -> list[int]:
    """The slice indices, each checked to lie in a volume of `depth` slices."""
    slices = [int(k) for k in slices]
    if not slices:
        raise InputError("no slices to show", hint="give at least one slice index")
    outside = [k for k in slices if not 0 <= k < depth]
    if outside:
        raise InputError(f"slice {outside[0]} is outside the volume (0 to {depth - 1})",
                         hint="choose a slice inside the volume")
    return slices


# --- figures -------------------------------------------------------------------------------------

def _new_figure(width_inches: float, height_inches: float) -> Figure:
    figure = Figure(figsize=(width_inches, height_inches), dpi=DPI)
    FigureCanvasAgg(figure)  # its own Agg canvas: pyplot never sees this figure
    return figure


PICTURE_FORMATS = ("png", "jpg", "jpeg", "tif", "tiff", "pdf", "svg")


def picture_format(path: str | os.PathLike) -> str:
    """The format a picture is written in, by its suffix (PNG, JPEG, TIFF, PDF or SVG); an
    OutputError for another suffix, which would hold PNG data under a name that says otherwise."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PICTURE_FORMATS:
        raise OutputError(f"unknown picture format '{Path(path).suffix}'", path,
                          "name it .png (or .jpg, .tif, .pdf, .svg)")
    return suffix


def check_picture_path(path: str | os.PathLike) -> None:
    """Fail before any work where a picture cannot be written: an unknown format or an unwritable place."""
    picture_format(path)
    check_writable(path)


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=picture_format(path), dpi=DPI)
    finally:
        figure.clear()  # free the artists now rather than at garbage collection
    return Path(path)
