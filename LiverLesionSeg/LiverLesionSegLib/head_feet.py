"""Whether a CT's file has its head and feet swapped: the lungs below the liver.

A file written with its slices' order reversed against its header (slices stacked from the head down
and saved with an affine that counts them upwards, a common slip when a pipeline builds a NIfTI from
DICOM slices) shows the patient upside down in every view but the axial one. The network, which reads
axial slices, still finds the liver (liver Dice 0.01 to 0.04 lower on the shared cases so stored), but
the positions in the lesion table are mirrored head to feet, and the caution of a liver cut by the
scan names the wrong end. The air inside the body tells: the lung bases lie around the top of the
liver, bowel gas below it, and lung is lighter than gas (its tissue and vessels: a median of -633 to
-903 HU on the shared cases, bowel gas -799 to -1006).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

AIR_BELOW_HU = -500.0
PIXEL_STEP = 4  # every fourth row and column: about 3 mm pixels, hundredths of a second for a CT
# The air in the liver's lowest third and below must be this many times the air in its top third and
# above. The shared cases and the sample as stored: 0.02 to 0.32 times as much; stored reversed, 3.1 to 60.
MORE_AIR_BELOW = 2.0
MIN_AIR_BELOW_ML = 100.0  # less is bowel gas, whatever its place
MIN_LIVER_SLICES = 6

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)  # holes are filled slice by slice


def lungs_below_the_liver(ct_hu: np.ndarray, liver: np.ndarray, voxel_ml: float) -> bool:
    """Whether the CT (`ct_hu`, axial, array axis 0 from the feet to the head as its header says) holds
    clearly more air inside the body around the lower end of `liver` (its mask on the same grid) than
    around its top, and that air is lighter (lung, not bowel gas): its head and feet swapped.
    `voxel_ml`: one voxel's volume in mL."""
    slices = np.flatnonzero(liver.any(axis=(1, 2)))
    if len(slices) < MIN_LIVER_SLICES:
        return False
    sampled = ct_hu[:, ::PIXEL_STEP, ::PIXEL_STEP]
    inside = ndimage.binary_fill_holes(sampled > AIR_BELOW_HU, structure=_IN_PLANE) & (sampled < AIR_BELOW_HU)
    third = (slices[-1] - slices[0]) // 3
    below, above = slice(None, slices[0] + third + 1), slice(slices[-1] - third, None)
    air_below, air_above = sampled[below][inside[below]], sampled[above][inside[above]]
    below_ml = air_below.size * voxel_ml * PIXEL_STEP ** 2
    if below_ml < max(MIN_AIR_BELOW_ML, MORE_AIR_BELOW * air_above.size * voxel_ml * PIXEL_STEP ** 2):
        return False
    return air_above.size == 0 or float(np.median(air_below)) > float(np.median(air_above))
