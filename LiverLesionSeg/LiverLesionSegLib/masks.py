"""Small operations on binary masks shared by post-processing, metrics and the lesion table."""

from __future__ import annotations

from typing import Optional

import cc3d
import numpy as np
from scipy import ndimage

from .slabs import by_slabs


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (26-connected in 3-D: face, edge and corner neighbours; a lesion is one
    such component) of the non-zero voxels: a label array (its dtype the smallest unsigned one that
    holds the count) and the number of components, numbered in scan order as scipy's `ndimage.label`
    numbers them. cc3d's labelling is about four times faster; the clean-up labels the liver and the
    lesions about ten times."""
    labels, count = cc3d.connected_components(np.asarray(mask, dtype=bool), connectivity=26, return_N=True)
    return labels, int(count)


def array_sampling(spacing: tuple[float, float, float]) -> tuple[float, float, float]:
    """A volume's spacing (i, j, k) in mm as the mm per voxel along its array's axes [k, j, i]
    (scipy's `sampling`)."""
    return tuple(float(s) for s in reversed(spacing))


def bounding_box(mask: np.ndarray) -> Optional[tuple[slice, ...]]:
    """Slices of the smallest box holding every set voxel, None for an empty mask."""
    box = [slice(None)] * mask.ndim
    for axis in range(mask.ndim):
        # Narrow the search to the box found so far: later axes scan fewer voxels.
        others = tuple(a for a in range(mask.ndim) if a != axis)
        present = np.flatnonzero(mask[tuple(box)].any(axis=others))
        if present.size == 0:
            return None
        box[axis] = slice(int(present[0]), int(present[-1]) + 1)
    return tuple(box)


def ball(sampling: tuple[float, ...], radius_mm: float) -> np.ndarray:
    """The voxel offsets within `radius_mm` of the centre, on a grid of `sampling` mm (a structuring
    element: erosion and dilation by it are a few times faster than distance transforms here)."""
    reach = [int(radius_mm // s) for s in sampling]
    offsets = np.indices([2 * r + 1 for r in reach]).astype(float)
    distance2 = sum(((o - r) * s) ** 2 for o, r, s in zip(offsets, reach, sampling))
    return distance2 <= radius_mm ** 2


def eroded(mask: np.ndarray, structure: np.ndarray, border_value: int = 0) -> np.ndarray:
    """scipy's `binary_erosion(mask, structure, border_value=...)`, the same voxels, two to five
    times faster for a ball: a voxel whose box around it, the structure's size, lies in the mask is
    eroded, one whose box held by the structure does not is not (both cheap, box by box), and only
    the voxels between, near the surface, are tested against the structure itself; a large mask slab
    by slab on every core. `structure` has an odd size along every axis, its centre the origin."""
    if any(n % 2 == 0 for n in structure.shape):
        raise ValueError(f"a structuring element of odd size along every axis, not {structure.shape}")
    return by_slabs(lambda part: _eroded(part > 0, structure, border_value), mask, structure.shape[0] // 2)


def _eroded(inside: np.ndarray, structure: np.ndarray, border_value: int) -> np.ndarray:
    surely = _box_eroded(inside, [n // 2 for n in structure.shape], border_value)
    centre = tuple(n // 2 for n in structure.shape)
    # without its centre a structure can erode a voxel outside the mask: then all are undecided
    maybe = _box_eroded(inside, _box_held(structure), border_value) if structure[centre] else np.ones_like(inside)
    undecided = maybe & ~surely
    if not undecided.any():
        return surely
    # with `mask`, scipy tests the undecided voxels only and passes the others' input through
    exact = ndimage.binary_erosion(inside, structure, border_value=border_value, mask=undecided)
    return surely | (exact & undecided)


def dilated(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """scipy's `binary_dilation(mask, structure)`, the same voxels, faster (see `eroded`): the
    erosion of what lies outside the mask, the scan's border counted outside."""
    return ~eroded(~(mask > 0), structure[(slice(None, None, -1),) * structure.ndim], border_value=1)


def _box_eroded(mask: np.ndarray, half: list[int], border_value: int) -> np.ndarray:
    """`mask` eroded by the box of half-widths `half`, an axis at a time as the AND of shifted copies
    (for the few voxels a side here, several times faster than scipy's minimum filter)."""
    out = mask
    for axis, h in enumerate(half):
        if h == 0:
            continue
        width = [(0, 0)] * mask.ndim
        width[axis] = (h, h)
        padded = np.pad(out, width, constant_values=bool(border_value))

        def shifted(d: int) -> np.ndarray:
            return padded[tuple(slice(d, d + n) if a == axis else slice(None) for a, n in enumerate(out.shape))]
        out = shifted(0).copy()
        for d in range(1, 2 * h + 1):
            out &= shifted(d)
    return out


def _box_held(structure: np.ndarray) -> list[int]:
    """Half-widths of a box about the centre that `structure` holds whole, grown an axis at a time
    while it does (a ball holds a box of about 0.58 its radius)."""
    centre = [n // 2 for n in structure.shape]
    half = [0] * structure.ndim
    grew = True
    while grew:
        grew = False
        for axis in range(structure.ndim):
            trial = list(half)
            trial[axis] += 1
            box = tuple(slice(c - h, c + h + 1) for c, h in zip(centre, trial))
            if trial[axis] <= centre[axis] and structure[box].all():
                half, grew = trial, True
    return half
