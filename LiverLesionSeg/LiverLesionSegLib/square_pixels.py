"""A CT whose axial pixels are longer one way than the other, as a coronal or sagittal series gives
once its slices are read as axial ones (3 mm between its planes, 0.7 mm within them).

The network learned on square pixels, and a whole slice shrunk to its input would be squeezed
(3Dircadb1.17 resampled to 0.74 x 3 mm pixels gave a liver Dice of 0.62 and no lesion). Such a CT
is segmented on square pixels of its finer side (interpolated linearly, slice by slice) and the
results are brought back onto its own grid by area averaging. A training case is learned from on
square pixels too.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .memory import check_image_fits
from .preprocess import resize_slices
from .volume import Volume

SQUARE_TOLERANCE = 0.05  # pixels whose sides differ by less than this share are square


def on_square_pixels(ct: Volume) -> Optional[Volume]:
    """`ct` [k, j, i] resampled within its slices to square pixels of its finer side; None where its
    pixels are square already. The new pixels' edges meet the old ones' at the image's border."""
    spacing_i, spacing_j = ct.spacing[0], ct.spacing[1]
    fine = min(spacing_i, spacing_j)
    if max(spacing_i, spacing_j) <= fine * (1 + SQUARE_TOLERANCE):
        return None
    rows, columns = round(ct.shape[1] * spacing_j / fine), round(ct.shape[2] * spacing_i / fine)
    check_image_fits((ct.shape[0], rows, columns), 4, ct.source or None, onto="square pixels")
    array = resize_slices(ct.array, (rows, columns), "bilinear")
    if np.issubdtype(ct.array.dtype, np.integer):
        array = np.round(array).astype(ct.array.dtype)
    step_i, step_j = spacing_i * ct.shape[2] / columns, spacing_j * ct.shape[1] / rows
    first = [(step_i / spacing_i - 1) / 2, (step_j / spacing_j - 1) / 2, 0.0]  # in the old voxels' (i, j, k)
    return Volume(array, (step_i, step_j, ct.spacing[2]), tuple(ct.physical_points(first)[0]), ct.direction.copy(),
                  ct.source, ct.acquired)


def mask_on_square_pixels(mask: np.ndarray, square: Volume) -> np.ndarray:
    """A 0/1 mask [k, j, i] of the CT that `on_square_pixels` made `square` of, on `square`'s grid."""
    return (resize_slices(mask, square.shape[1:], "bilinear") >= 0.5).astype(np.uint8)


def back_on_grid(values: np.ndarray, shape: tuple[int, int], mask: bool) -> np.ndarray:
    """Slices [k, rows, columns] brought to `shape` (rows, columns) by area averaging; a 0/1 `mask`
    is 1 where at least half of an old pixel was."""
    averaged = resize_slices(values, shape, "area")
    return (averaged >= 0.5).astype(values.dtype) if mask else averaged.astype(values.dtype)
