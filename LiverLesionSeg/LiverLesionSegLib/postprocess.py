"""Clean-up of the thresholded masks on the CT's grid.

The liver keeps its largest 3-D component; lesions are kept only where they touch the liver and
above a minimum volume; the liver mask includes its lesions (the organ, as the reference masks
draw it).
"""

from __future__ import annotations

import numpy as np
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
                config: InferenceConfig) -> tuple[np.ndarray, np.ndarray]:
    """uint8 masks [k, j, i] -> the cleaned pair; the liver returned includes the lesions.

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
    liver = np.maximum(liver, lesion)
    if config.largest_liver_component and liver.any():
        liver = largest_component(liver)
        lesion = lesion & liver
    out_liver[box], out_lesion[box] = liver, lesion
    return out_liver, out_lesion
