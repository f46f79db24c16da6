"""The liver's box: a second look at the liver region at the network's full resolution.

A whole 512-pixel slice shrunk to 128 pixels leaves a 10 mm lesion 3 pixels wide. With `zoom` on,
a first pass over whole slices finds the liver; a square box around it (plus a margin), over the
liver's slices, is then resampled to 128 pixels and segmented again. Training sees both views: the
whole slices and the box drawn around the true liver. With `zoom_tiles`, a third look cuts the box
into overlapping tiles, each resampled to 128 pixels too: finer pixels still (measured, not bundled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .masks import bounding_box

AIR_HU = -1024  # what a crop reaching past the image edge is filled with
_SLICE_PIXELS = 16  # network pixels of liver that make a slice part of the box (with quantum > 1)
_CELL_SHARE = 0.1  # share of a cell covered by liver that puts the cell in the box


@dataclass(frozen=True)
class Box:
    """Slices [k0, k1) and a square [j0, j0 + side) x [i0, i0 + side) that may reach past the image."""

    k0: int
    k1: int
    j0: int
    i0: int
    side: int


def liver_box(liver: np.ndarray, spacing: tuple[float, float, float], margin_mm: float,
              extra_slices: int) -> Optional[Box]:
    """The square box around a liver mask [k, j, i], `margin_mm` wider on every side, over the
    liver's slices plus `extra_slices` above and below (clipped to the volume). None if empty."""
    box = bounding_box(liver)
    if box is None:
        return None
    ks, js, is_ = box
    return box_around((ks.start, ks.stop, js.start, js.stop, is_.start, is_.stop), liver.shape[0], spacing,
                      margin_mm, extra_slices)


def liver_box_from_network_grid(liver: np.ndarray, slice_indices: np.ndarray, full_shape: tuple[int, int, int],
                                spacing: tuple[float, float, float], margin_mm: float, extra_slices: int,
                                quantum: int = 1) -> Optional[Box]:
    """The same box from a liver found on the network's grid: `liver` (n, S, S) for the slices
    `slice_indices` of a volume of `full_shape` [k, j, i].

    The second pass is sensitive to its box (another box, another resampling), so the box is made
    from where the liver clearly is, not from its outermost pixels: slices holding at least
    `_SLICE_PIXELS` liver pixels, and cells of `quantum` full-resolution pixels at least
    `_CELL_SHARE` covered. The side is then rounded up to a multiple of `quantum` and the corner to a
    multiple of a quarter of it. A liver found a pixel larger or smaller (in another precision or
    batch size) then gives the very same box, and so the very same second pass."""
    size = liver.shape[1]
    rows, cols = full_shape[1] / size, full_shape[2] / size
    cell = _cell(quantum / rows, size) if quantum > 1 else 1
    clear = liver.reshape(len(liver), -1).sum(axis=1) >= (_SLICE_PIXELS if quantum > 1 else 1)
    if not clear.any():
        return None
    ks = np.flatnonzero(clear)
    covered = liver[clear]
    if cell > 1:
        covered = covered.reshape(len(covered), size // cell, cell, size // cell, cell).mean(axis=(2, 4)) >= _CELL_SHARE
    box = bounding_box(covered)
    if box is None:
        return None
    _, js, is_ = box
    bounds = (int(slice_indices[ks[0]]), int(slice_indices[ks[-1]]) + 1,
              int(np.floor(js.start * cell * rows)), int(np.ceil(js.stop * cell * rows)),
              int(np.floor(is_.start * cell * cols)), int(np.ceil(is_.stop * cell * cols)))
    return box_around(bounds, full_shape[0], spacing, margin_mm, extra_slices, quantum)


def _cell(pixels: float, size: int) -> int:
    """The power of two nearest `pixels` (network pixels to a quantum) that divides the network's
    `size`: cells must tile the slice, whatever the image's own size (a cropped CT, 768 pixels)."""
    cell = 2 ** max(int(round(np.log2(max(pixels, 1.0)))), 0)
    while size % cell:
        cell //= 2
    return cell


def box_around(bounds: tuple[int, int, int, int, int, int], n_slices: int, spacing: tuple[float, float, float],
               margin_mm: float, extra_slices: int, quantum: int = 1) -> Box:
    """A square box around [k0, k1) x [j0, j1) x [i0, i1), with the margins (see above for `quantum`)."""
    k0, k1, j0, j1, i0, i1 = bounds
    margin_j = int(np.ceil(margin_mm / spacing[1]))
    margin_i = int(np.ceil(margin_mm / spacing[0]))
    side = max(j1 - j0 + 2 * margin_j, i1 - i0 + 2 * margin_i)
    side = int(np.ceil(side / quantum) * quantum)
    step = max(quantum // 4, 1)
    corner = (lambda low, high: int(round(((low + high) / 2 - side / 2) / step) * step))
    return Box(max(k0 - extra_slices, 0), min(k1 + extra_slices, n_slices), corner(j0, j1), corner(i0, i1), side)


def tiles(box: Box, per_side: int, share: float) -> list[Box]:
    """The box cut into per_side x per_side overlapping square tiles of `share` of its side, row by
    row, the first at its corner and the last at the opposite one."""
    side = int(round(box.side * share))
    steps = [0] if per_side == 1 else [round(n * (box.side - side) / (per_side - 1)) for n in range(per_side)]
    return [Box(box.k0, box.k1, box.j0 + dj, box.i0 + di, side) for dj in steps for di in steps]


def tile_weights(side: int) -> np.ndarray:
    """(side, side) weights of a tile's pixels when overlapping tiles are averaged: highest at its
    centre, near 0 at its edge, so no seam shows where one tile ends."""
    ramp = np.sin(np.pi * (np.arange(side) + 0.5) / side).astype(np.float32)
    return np.outer(ramp, ramp) + 1e-3


def crop(array: np.ndarray, box: Box, fill: float) -> np.ndarray:
    """array[k0:k1, box] with `fill` where the box reaches past the image, in a type that holds both
    (a CT stored unsigned cannot hold air's -1024)."""
    dtype = np.promote_types(array.dtype, np.min_scalar_type(fill))
    out = np.full((box.k1 - box.k0, box.side, box.side), fill, dtype=dtype)
    in_image, in_box = in_plane_overlap(box, array.shape)
    out[(slice(None),) + in_box] = array[(slice(box.k0, box.k1),) + in_image]
    return out


def paste(target: np.ndarray, values: np.ndarray, box: Box) -> None:
    """Write values (k1 - k0, side, side) into target [k, j, i] inside the box, clipped to the image."""
    in_image, in_box = in_plane_overlap(box, target.shape)
    target[(slice(box.k0, box.k1),) + in_image] = values[(slice(None),) + in_box]


def in_plane_overlap(box: Box, shape: tuple[int, ...]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The part of the box's square inside an image of `shape` [k, j, i]: its (rows, columns) in the
    image and in the box."""
    (image_j, box_j), (image_i, box_i) = _overlap(box.j0, box.side, shape[1]), _overlap(box.i0, box.side, shape[2])
    return (image_j, image_i), (box_j, box_i)


def _overlap(start: int, side: int, size: int) -> tuple[slice, slice]:
    """The part of [start, start + side) inside [0, size): as image slice and as box slice."""
    lo, hi = max(start, 0), min(start + side, size)
    return slice(lo, hi), slice(lo - start, hi - start)
