"""Clean-up of the thresholded masks on the CT's grid.

The liver keeps its largest 3-D component; lesions are kept only where they touch the liver, where
enough of what surrounds them is liver, above a minimum volume and above fluid density; what the
last two rules drop can be taken out of the liver too; the liver mask includes its lesions (the
organ, as the reference masks draw it).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from .config import InferenceConfig
from .masks import bounding_box, label_components


def largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = label_components(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return (labels == int(np.argmax(sizes))).astype(mask.dtype)


def components_touching(mask: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The connected components of `mask` that share at least one voxel with `region`."""
    labels, count = label_components(mask)
    if count == 0:
        return mask
    keep = np.zeros(count + 1, bool)
    keep[labels[(labels > 0) & (region > 0)]] = True
    return _kept(labels, keep, mask.dtype)


def components_surrounded_by(mask: np.ndarray, region: np.ndarray, spacing: tuple[float, float, float],
                              min_fraction: float, shell_mm: float) -> np.ndarray:
    """The connected components of `mask` whose surroundings (the voxels within `shell_mm` of them
    that are not in `mask`) are at least `min_fraction` in `region`. A liver lesion sits in the liver;
    a mass beside it (a kidney or adrenal tumour, the bowel) touches the liver on one side only.
    `spacing` is (i, j, k) in mm, the arrays [k, j, i]."""
    labels, count = label_components(mask)
    if count == 0 or min_fraction <= 0:
        return mask
    sampling = tuple(float(s) for s in reversed(spacing))
    reach = [int(np.ceil(shell_mm / s)) for s in sampling]
    keep = np.zeros(count + 1, bool)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        grown = tuple(slice(max(0, b.start - r), b.stop + r) for b, r in zip(box, reach))
        component = labels[grown] == index
        near = ndimage.distance_transform_edt(~component, sampling=sampling) <= shell_mm
        shell = near & (labels[grown] == 0)
        # a component with no surroundings in the scan (it fills the crop) cannot be judged: kept
        keep[index] = not shell.any() or np.count_nonzero(region[grown][shell]) >= min_fraction * shell.sum()
    return _kept(labels, keep, mask.dtype)


def components_with_median_at_least(mask: np.ndarray, values: np.ndarray, minimum: float) -> np.ndarray:
    """The connected components of `mask` whose median of `values` (the CT, in HU) is `minimum` or
    more. A simple cyst, the gallbladder and the bowel's fluid lie under 20 HU; tumours, necrotic
    ones included, have a median above it."""
    labels, count = label_components(mask)
    if count == 0:
        return mask
    keep = np.zeros(count + 1, bool)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):  # each in its box: fast
        keep[index] = np.median(values[box][labels[box] == index]) >= minimum
    return _kept(labels, keep, mask.dtype)


def remove_small_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    if min_voxels <= 1:
        return mask
    labels, count = label_components(mask)
    if count == 0:
        return mask
    keep = np.bincount(labels.ravel(), minlength=count + 1) >= min_voxels
    keep[0] = False
    return _kept(labels, keep, mask.dtype)


def _kept(labels: np.ndarray, keep: np.ndarray, dtype) -> np.ndarray:
    """The voxels whose component is kept (`keep` indexed by label; a lookup, faster than np.isin)."""
    return keep.astype(dtype)[labels]


def clean_masks(liver: np.ndarray, lesion: np.ndarray, spacing: tuple[float, float, float],
                config: InferenceConfig, ct: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 masks [k, j, i] -> the cleaned pair; the liver returned includes the lesions. `ct` (in
    HU, on the masks' grid) is needed by `config.min_lesion_median_hu` only.

    Works inside the bounding box of both masks: the labelling costs follow the organ, not the scan.
    """
    box = bounding_box(np.maximum(liver, lesion))
    # np.zeros, not zeros_like: untouched pages outside the box then cost no memory
    out_liver, out_lesion = np.zeros(liver.shape, liver.dtype), np.zeros(lesion.shape, lesion.dtype)
    if box is None:
        return out_liver, out_lesion
    liver, lesion = liver[box], lesion[box]
    if config.lesions_inside_liver:
        lesion = components_touching(lesion, liver)
    if config.min_lesion_mm3 > 0:
        lesion = remove_small_components(lesion, int(np.ceil(config.min_lesion_mm3 / float(np.prod(spacing)))))
    judged = lesion
    if config.min_lesion_median_hu is not None:
        if ct is None:
            raise ValueError("clean_masks needs the CT for min_lesion_median_hu")
        lesion = components_with_median_at_least(lesion, ct[box], config.min_lesion_median_hu)
    if config.min_liver_around_lesion > 0:
        lesion = components_surrounded_by(lesion, liver, spacing, config.min_liver_around_lesion,
                                          config.liver_around_lesion_mm)
    if config.dropped_lesions_leave_liver:
        # what these two rules drop is fluid or a mass beside the liver: not liver either
        liver = np.where((judged > 0) & (lesion == 0), 0, liver).astype(liver.dtype)
    liver = np.maximum(liver, lesion)
    if config.largest_liver_component and liver.any():
        liver = largest_component(liver)
        lesion = lesion & liver
    out_liver[box], out_lesion[box] = liver, lesion
    return out_liver, out_lesion
