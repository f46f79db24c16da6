"""Whether a CT is stored flipped in its plane, so that it is segmented flipped back.

The network learned the liver on the patient's right and the spine at the back. A patient with situs
inversus, or a file whose orientation is wrong (an image written in the other of the radiological and
neurological conventions: left and right swapped; LPS voxels labelled RAS: turned half a turn) shows
it otherwise; there the network finds part of the liver and loses lesions (on the shared cases
mirrored, liver Dice 0.58 to 0.73 for four of five; turned half a turn, 0 to 0.63). A cheap look at
a few whole slices tells: where the liver found lies against the body's middle, and the bone against
it; only where the bone lies in front, or the liver not clearly on the right, the flipped slices are
looked at, and a flip taken only where they show more liver (docs/robustness.md, "Flipped CTs").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

BODY_ABOVE_HU = -500.0
BONE_ABOVE_HU = 400.0
SAMPLED_SLICES = 16
# The liver's centre this share of the slice's width to the right of the body's middle: as expected.
# Measured with the cross-validation fold models on the patient each had not seen
# (benchmarks/accuracy.py's MobileNetV2 folds): as stored 0.12 to 0.19 to the right; mirrored 0.09 and
# 0.02 to the right, 0.03 and 0.09 to the left, and 0.09 to the right for RadCTTACEomics_0697 (a
# 44-slice arterial phase, where the spleen was taken for the liver: not caught).
CLEARLY_RIGHT = 0.06
# The bone's centre lies this share of the slice's height behind the body's middle (the spine; the
# shared cases and the sample: 0.08 to 0.17 behind); as far in front, the CT may be stored front to back.
CLEARLY_BEHIND = 0.03
# A flip must show this much more liver than the slices as stored. The same fold models: 1.39 to 2.53
# times as much for the four mirrored cases above; as stored, 0.39 to 0.72 times as much mirrored
# (1.02 for RadCTTACEomics_0697, whose liver lies clearly on the right: never looked at twice).
FLIPPED_GAIN = 1.15
MIN_LIVER_SHARE = 0.002  # of the sampled slices' pixels: less is no liver to judge by


@dataclass(frozen=True)
class Flip:
    swapped: str  # what the flip swaps, for the caution
    axes: tuple[int, ...]  # of a [k, j, i] array in LPS voxel order: 1 runs to the back, 2 to the left

    def apply(self, array: np.ndarray) -> np.ndarray:
        """`array` [k, j, i] flipped, as a contiguous copy (the flip is its own inverse)."""
        return np.ascontiguousarray(np.flip(array, self.axes))


LEFT_RIGHT = Flip("left and right", (2,))
FRONT_BACK = Flip("front and back", (1,))
HALF_TURN = Flip("left and right and front and back", (1, 2))
HEAD_FEET = Flip("head and feet", (0,))  # found after segmenting (`head_feet`), not here


def flip_to_segment(ct_hu: np.ndarray, stack: np.ndarray,
                    liver_on: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Optional[Flip]:
    """The flip that puts the CT (`ct_hu`, axial, LPS voxel order) the way the network learned, or None
    for a CT as expected. `stack`: its network slices (`preprocess.prepare_ct`); `liver_on(stack,
    indices)`: the network's liver mask on those slices.

    Front and back first: only where the bone lies clearly in front of the body's middle (the spine in
    front) and the network sees more liver so turned (the bowel full of oral contrast is bone to this
    look; the network's word guards against it: the shared cases as stored show 0.58 to 0.89 times as
    much liver turned, and turned 1.13 to 1.72 times as much turned back). Then left and right, on the
    slices turned so: only where the liver found does not lie clearly on the right, and the mirrored
    slices show clearly more of it."""
    indices = np.unique(np.linspace(0, len(stack) - 1, min(SAMPLED_SLICES, len(stack))).round().astype(int))
    sampled = ct_hu[indices]
    flip, seen = None, liver_on(stack, indices)
    if _bone_in_front(sampled):
        turned = liver_on(FRONT_BACK.apply(stack), indices)
        if _enough(turned) and turned.sum() > seen.sum():  # the bone's word, and the network's
            flip, stack, seen = FRONT_BACK, FRONT_BACK.apply(stack), turned
    if _enough(seen) and _liver_clearly_right(seen, sampled):
        return flip
    if _clearly_more(liver_on(LEFT_RIGHT.apply(stack), indices), seen):
        return HALF_TURN if flip else LEFT_RIGHT
    return flip


def _enough(liver: np.ndarray) -> bool:
    return liver.sum() >= MIN_LIVER_SHARE * liver.size


def _clearly_more(flipped: np.ndarray, as_is: np.ndarray) -> bool:
    return _enough(flipped) and flipped.sum() > FLIPPED_GAIN * as_is.sum()


def _liver_clearly_right(liver: np.ndarray, ct_hu: np.ndarray) -> bool:
    return liver_to_the_right(liver, ct_hu) > CLEARLY_RIGHT


def liver_to_the_right(liver: np.ndarray, ct_hu: np.ndarray) -> float:
    """How far the centre of `liver` (a mask on `ct_hu`, both axial in LPS voxel order) lies to the
    patient's right of the body's middle, as a share of the slices' width (negative: to the left)."""
    body = ct_hu > BODY_ABOVE_HU
    body_middle = np.nonzero(body)[2].mean() / body.shape[2] if body.any() else 0.5
    return float(body_middle - np.nonzero(liver)[2].mean() / liver.shape[2])


def _bone_in_front(ct_hu: np.ndarray) -> bool:
    body, bone = ct_hu > BODY_ABOVE_HU, ct_hu > BONE_ABOVE_HU
    if not bone.any():
        return False
    return np.nonzero(bone)[1].mean() / bone.shape[1] < np.nonzero(body)[1].mean() / body.shape[1] - CLEARLY_BEHIND
