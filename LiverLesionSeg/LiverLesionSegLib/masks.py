"""Small operations on binary masks shared by post-processing, metrics and the lesion table."""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

# 26-connectivity: face, edge and corner neighbours in 3-D. A lesion is one such component.
CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (26-connected in 3-D): a label array and the number of components."""
    return ndimage.label(mask, structure=CONNECTIVITY_26)


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
