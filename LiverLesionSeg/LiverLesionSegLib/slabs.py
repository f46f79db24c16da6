"""Whole-volume operations spread over the processor's cores, slab by slab along the slices.

The clean-up's erosions, dilations and in-slice smoothing run in scipy's C code, which releases
Python's lock: on thin-slice series they are its largest parts, and on one core each. Cut into slabs
of slices, each grown by the slices the operation reaches, they run side by side and give the same
voxels as on the whole volume.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

import numpy as np

MIN_SLAB_VOXELS = 2_000_000  # below this a volume is done in one piece: threads would cost more than they save


def worker_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows
        return os.cpu_count() or 1


def by_slabs(operation: Callable[[np.ndarray], np.ndarray], array: np.ndarray, reach: int,
             workers: Optional[int] = None) -> np.ndarray:
    """`operation(array)`, for an operation whose value at a voxel depends only on the input within
    `reach` slices of it (axis 0) and that keeps the array's shape: computed on slabs of slices, each
    with `reach` slices more on both sides where the array has them, in `workers` threads (all cores
    by default), and put together."""
    workers = worker_count() if workers is None else workers
    count = min(workers, len(array) // max(2 * reach, 1), array.size // MIN_SLAB_VOXELS)
    if count <= 1:
        return operation(array)
    bounds = np.linspace(0, len(array), count + 1).astype(int)
    slabs = [(max(start - reach, 0), start, stop, min(stop + reach, len(array)))
             for start, stop in zip(bounds[:-1], bounds[1:])]

    def one(slab: tuple[int, int, int, int]) -> np.ndarray:
        first, start, stop, last = slab
        return operation(array[first:last])[start - first:stop - first]

    with ThreadPoolExecutor(count) as pool:
        parts = list(pool.map(one, slabs))
    return np.concatenate(parts)
