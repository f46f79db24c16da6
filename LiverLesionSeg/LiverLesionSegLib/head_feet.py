"""Whether a CT's file has its head and feet swapped: the lungs below the liver.

A file written with its slices' order reversed against its header (slices stacked from the head down
and saved with an affine that counts them upwards, a common slip when a pipeline builds a NIfTI from
DICOM slices) shows the patient upside down in every view but the axial one. The network, which reads
axial slices, still finds most of the liver, but it reads each slice's neighbours the other way round
(liver Dice 0.010 to 0.075 lower on the shared cases so stored); the positions in the lesion table are
mirrored head to feet, and the caution of a liver cut by the scan names the wrong end. Such a CT is
segmented again the other way round, as the network learned it, and a caution tells
(`infer.segment_canonical`, `caveats`). The air inside the body tells: the lung bases lie around the
top of the liver, bowel gas below it, and lung is lighter than gas (its tissue and vessels: a median
of -633 to -903 HU on the shared cases, bowel gas -799 to -1006).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from .flips import BODY_ABOVE_HU  # the body's edge against air

PIXEL_STEP = 4  # every fourth row and column: about 3 mm pixels, hundredths of a second for a CT
# The air in the liver's lowest third and below must be this many times the air in its top third and
# above. The shared cases and the sample as stored: 0.02 to 0.32 times as much; stored reversed, 3.1 to 60.
MORE_AIR_BELOW = 2.0
MIN_AIR_BELOW_ML = 100.0  # less is bowel gas, whatever its place
MIN_LIVER_SLICES = 6
CUT_LIVER_CM2 = 5.0  # liver on the scan's first or last slice: less is the tip of a lobe

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)  # holes are filled slice by slice


def head_and_feet_swapped(ct_hu: np.ndarray, liver: np.ndarray, spacing: Sequence[float]) -> bool:
    """Whether the CT (`ct_hu`, axial LPS voxel order, `spacing` in mm) looks stored with its head and
    feet swapped, by the liver found on it (`liver`, a mask on the same grid). A scan that cuts the liver
    (of the chest, of the pelvis) is not judged: it may hold no lung to go by."""
    if cut_ends(liver, spacing):
        return False
    return lungs_below_the_liver(ct_hu, liver, float(np.prod(spacing)) / 1000)


def cut_ends(liver: np.ndarray, spacing: Sequence[float]) -> list[str]:
    """Which ends of the scan ("lower", "upper") the liver mask `liver` (axial LPS voxel order, array
    axis 0 from the feet to the head as the header says) crosses with more than CUT_LIVER_CM2."""
    pixel_cm2 = spacing[0] * spacing[1] / 100.0
    ends = {"lower": liver[0], "upper": liver[-1]}
    return [name for name, plane in ends.items() if np.count_nonzero(plane) * pixel_cm2 > CUT_LIVER_CM2]


def lungs_below_the_liver(ct_hu: np.ndarray, liver: np.ndarray, voxel_ml: float) -> bool:
    """Whether the CT (`ct_hu`, axial, array axis 0 from the feet to the head as its header says) holds
    clearly more air inside the body around the lower end of `liver` (its mask on the same grid) than
    around its top, and that air is lighter (lung, not bowel gas): its head and feet swapped.
    `voxel_ml`: one voxel's volume in mL."""
    slices = np.flatnonzero(liver.any(axis=(1, 2)))
    if len(slices) < MIN_LIVER_SLICES:
        return False
    sampled = ct_hu[:, ::PIXEL_STEP, ::PIXEL_STEP]
    inside = ndimage.binary_fill_holes(sampled > BODY_ABOVE_HU, structure=_IN_PLANE) & (sampled < BODY_ABOVE_HU)
    third = (slices[-1] - slices[0]) // 3
    below, above = slice(None, slices[0] + third + 1), slice(slices[-1] - third, None)
    air_below, air_above = sampled[below][inside[below]], sampled[above][inside[above]]
    below_ml = air_below.size * voxel_ml * PIXEL_STEP ** 2
    if below_ml < max(MIN_AIR_BELOW_ML, MORE_AIR_BELOW * air_above.size * voxel_ml * PIXEL_STEP ** 2):
        return False
    return air_above.size == 0 or float(np.median(air_below)) > float(np.median(air_above))
