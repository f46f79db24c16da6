"""From a CT volume to the network's input, and from its output back to the CT's grid.

Slices are HU-windowed, scaled to [0, 1], resampled in-plane to `size` x `size` (area averaging,
so no aliasing) and optionally standardised. The small stack is kept as uint8 (1.4 HU per level
for the default 350 HU window): a whole training set fits in memory. 2.5-D input stacks the
neighbouring slices as channels (or the volume interpolated at a fixed distance in mm), repeating
the edge slices at the ends of the volume.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .config import PreprocessConfig

_SLICE_BATCH = 32  # slices resampled at a time, bounding memory for large volumes


def window(hu: np.ndarray, config: PreprocessConfig, hu_shift: float = 0.0) -> np.ndarray:
    """HU (plus `hu_shift`) -> [0, 1] float32 over the configured window."""
    low, high = config.hu_min, config.hu_max
    hu = hu.astype(np.float32, copy=False)
    if hu_shift:
        hu = hu + np.float32(hu_shift)
    return (np.clip(hu, low, high) - low) / (high - low)


def shrink_slices(array: np.ndarray, size: int, to_unit=None) -> np.ndarray:
    """Resample every [k] slice to size x size by area averaging; `to_unit` maps a chunk to float32 first.

    Returns float32 (k, size, size).
    """
    return resize_slices(array, (size, size), "area", to_unit)


def resize_slices(array: np.ndarray, shape: tuple[int, int], mode: str, to_unit=None) -> np.ndarray:
    """float32 (k, *shape): every [k] slice resized (torch's `mode`: "area", "bilinear" with the
    pixels' edges, not centres, aligned), a few at a time to keep memory low; `to_unit` maps a chunk
    to float32 first."""
    out = np.empty((array.shape[0],) + tuple(shape), np.float32)
    options = {"align_corners": False} if mode == "bilinear" else {}
    for start in range(0, array.shape[0], _SLICE_BATCH):
        chunk = array[start:start + _SLICE_BATCH]
        chunk = to_unit(chunk) if to_unit else chunk.astype(np.float32)
        resized = F.interpolate(torch.from_numpy(np.ascontiguousarray(chunk))[:, None], size=tuple(shape), mode=mode,
                                **options)
        out[start:start + len(chunk)] = resized[:, 0].numpy()
    return out


def prepare_ct(hu: np.ndarray, config: PreprocessConfig, hu_shift: float = 0.0) -> np.ndarray:
    """A CT array [k, j, i] in HU -> uint8 stack (k, size, size) of windowed, resampled slices."""
    small = shrink_slices(hu, config.size, lambda chunk: window(chunk, config, hu_shift))
    return to_uint8(small)


def liver_hu_shift(stack: np.ndarray, liver: np.ndarray, config: PreprocessConfig,
                   slices: Optional[np.ndarray] = None) -> float:
    """The HU to add to a CT so that its liver's median lands on `config.liver_reference_hu`; 0 when
    that is off or there is no liver. `stack`: uint8 windowed slices (prepare_ct), `liver`: a mask of
    their shape, or of the `slices` given. Measured on the window's 8-bit levels (1.4 HU each by default)."""
    if config.liver_reference_hu is None:
        return 0.0
    levels = (stack if slices is None else stack[slices])[liver > 0]
    if levels.size == 0:
        return 0.0
    median_hu = config.hu_min + float(np.median(levels)) / 255.0 * (config.hu_max - config.hu_min)
    return float(config.liver_reference_hu) - median_hu


def prepare_masks(liver: np.ndarray, lesion: np.ndarray, size: int) -> np.ndarray:
    """Binary masks [k, j, i] -> uint8 (k, 2, size, size) area fractions (soft targets) x 255."""
    targets = np.stack([shrink_slices(liver, size), shrink_slices(lesion, size)], axis=1)
    return to_uint8(targets)


def to_uint8(unit: np.ndarray) -> np.ndarray:
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def network_input(stack: np.ndarray, indices: np.ndarray, config: PreprocessConfig,
                  slice_spacing_mm: Optional[float] = None) -> torch.Tensor:
    """uint8 stack (k, size, size) -> float32 tensor (n, channels, size, size) for the slices `indices`.

    The neighbour channels are the next slices or, with `config.context_mm`, the stack interpolated
    linearly at multiples of that distance (`slice_spacing_mm`, the stack's, is then needed)."""
    below, above, weight = between_slices(channel_positions(indices, config, slice_spacing_mm), len(stack))
    x = torch.from_numpy(stack[below]).float()
    if weight.any():
        x += torch.from_numpy(weight)[:, :, None, None] * (torch.from_numpy(stack[above]).float() - x)
    x = x.div_(255.0)
    if config.normalise == "centred":
        x = (x - 0.5) / 0.25  # a fixed affine: training and inference agree without per-volume statistics
    return x


def channel_positions(indices: np.ndarray, config: PreprocessConfig,
                      slice_spacing_mm: Optional[float] = None) -> np.ndarray:
    """(n, channels) slice positions, fractional with `config.context_mm`, of each slice's input channels."""
    offsets = np.arange(-config.context_slices, config.context_slices + 1, dtype=np.float64)
    if config.context_mm is not None:
        if not slice_spacing_mm or slice_spacing_mm <= 0:
            raise ValueError("context_mm needs the stack's slice spacing")
        offsets *= config.context_mm / slice_spacing_mm
        # Within a thousandth of a slice of a whole slice is that slice: a spacing read from rounded
        # DICOM positions (2.500011 mm) should give the neighbours of 2.5 mm, not a blend of them.
        whole = np.round(offsets)
        offsets = np.where(np.abs(offsets - whole) < 1e-3, whole, offsets)
    return np.asarray(indices)[:, None] + offsets[None, :]


def between_slices(positions: np.ndarray, slices: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional slice positions (clipped to the `slices` there are) -> the slice below each, the one
    above and the float32 weight of the one above, for linear interpolation along the slices."""
    positions = np.clip(positions, 0, slices - 1)
    below = np.floor(positions).astype(np.intp)
    return below, np.minimum(below + 1, slices - 1), (positions - below).astype(np.float32)


def average_slice_groups(array: np.ndarray, group: int) -> np.ndarray:
    """Slices along the first axis averaged in whole groups of `group` (the last, incomplete group
    left out), as float32: what a reconstruction `group` times as thick shows."""
    n = array.shape[0] // group
    return array[:n * group].reshape((n, group) + array.shape[1:]).astype(np.float32).mean(axis=1)


def targets_tensor(targets: np.ndarray, indices: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(targets[np.asarray(indices)]).float().div_(255.0)


def upsample(probabilities: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(n, c, size, size) -> (n, c, rows, cols), bilinear with pixel centres aligned like `area`."""
    if tuple(probabilities.shape[-2:]) == tuple(shape):
        return probabilities
    return F.interpolate(probabilities, size=shape, mode="bilinear", align_corners=False)
