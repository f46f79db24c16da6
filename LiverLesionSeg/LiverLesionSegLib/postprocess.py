"""Clean-up of the thresholded masks on the CT's grid.

The liver keeps its largest 3-D component, less what joins it through a thin neck; lesions are kept
only where they touch the liver, where enough of what surrounds them is liver, above a minimum
volume and above fluid density; the lesions kept can then grow over their unsure rim inside the
liver (`grown`: hysteresis thresholding); what the fluid and edge rules drop can be taken out of the
liver too; the liver mask includes its lesions (the organ, as the reference masks draw it).

Each lesion rule keeps or drops whole components, so the lesion mask is labelled once and every rule
narrows one array of kept labels (`keep[label]`, `keep[0]` the background, never kept).
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


def grown(seeds: np.ndarray, probability: np.ndarray, low: float) -> np.ndarray:
    """`seeds` with every connected region of `probability >= low` that holds a seed voxel
    (hysteresis thresholding: seeds found at a high threshold, grown down to a low one)."""
    box = bounding_box(probability >= low)
    if box is None:
        return seeds
    labels, count = label_components(probability[box] >= low)
    keep = touching(labels, _all(count), seeds[box])
    out = seeds.copy()
    out[box] = np.maximum(seeds[box], _kept(labels, keep, seeds.dtype))
    return out


def without_necks(mask: np.ndarray, spacing: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """`mask` less what joins its main part only through a neck thinner than 2 `radius_mm`: the
    largest component of the mask opened by a ball of that radius, grown back by it inside the mask."""
    ball = _ball(tuple(float(s) for s in reversed(spacing)), radius_mm)
    # border_value 1: the mask's edge at the array's edge is no surface (the array is its bounding box)
    core = ndimage.binary_erosion(mask > 0, ball, border_value=1)
    if not core.any():
        return mask
    core = largest_component(core.astype(np.uint8)) > 0
    return ((mask > 0) & ndimage.binary_dilation(core, ball)).astype(mask.dtype)


def _ball(sampling: tuple[float, ...], radius_mm: float) -> np.ndarray:
    """The voxel offsets within `radius_mm` of the centre, on a grid of `sampling` mm (a structuring
    element: erosion and dilation by it are a few times faster than distance transforms here)."""
    reach = [int(radius_mm // s) for s in sampling]
    offsets = np.indices([2 * r + 1 for r in reach]).astype(float)
    distance2 = sum(((o - r) * s) ** 2 for o, r, s in zip(offsets, reach, sampling))
    return distance2 <= radius_mm ** 2


def growing(config: InferenceConfig) -> bool:
    """Whether lesions grow below the lesion threshold (see `InferenceConfig.lesion_grow_threshold`)."""
    return config.lesion_grow_threshold is not None and config.lesion_grow_threshold < config.lesion_threshold


def components_surrounded_by(mask: np.ndarray, region: np.ndarray, spacing: tuple[float, float, float],
                              min_fraction: float, shell_mm: float) -> np.ndarray:
    """The connected components of `mask` whose surroundings (see `surrounded_by`) are at least
    `min_fraction` in `region`."""
    labels, count = label_components(mask)
    if min_fraction <= 0:
        return mask
    return _kept(labels, surrounded_by(labels, _all(count), region, spacing, min_fraction, shell_mm), mask.dtype)


def components_with_median_at_least(mask: np.ndarray, values: np.ndarray, minimum: float) -> np.ndarray:
    """The connected components of `mask` whose median of `values` is `minimum` or more."""
    labels, count = label_components(mask)
    return _kept(labels, median_at_least(labels, _all(count), values, minimum), mask.dtype)


def touching(labels: np.ndarray, keep: np.ndarray, region: np.ndarray) -> np.ndarray:
    """`keep` narrowed to the components that share at least one voxel with `region`."""
    touches = np.zeros_like(keep)
    touches[labels[(labels > 0) & (region > 0)]] = True
    return keep & touches


def at_least_voxels(labels: np.ndarray, keep: np.ndarray, min_voxels: int) -> np.ndarray:
    """`keep` narrowed to the components of `min_voxels` voxels or more."""
    return keep & (np.bincount(labels.ravel(), minlength=len(keep)) >= min_voxels)


def peak_at_least(labels: np.ndarray, keep: np.ndarray, values: np.ndarray, minimum: float) -> np.ndarray:
    """`keep` narrowed to the components whose highest value of `values` (the lesion probability)
    is `minimum` or more."""
    peaks = np.zeros(len(keep), values.dtype)
    peaks[1:] = ndimage.maximum(values, labels, np.arange(1, len(keep)))
    return keep & (peaks >= minimum)


def median_at_least(labels: np.ndarray, keep: np.ndarray, values: np.ndarray, minimum: float) -> np.ndarray:
    """`keep` narrowed to the components whose median of `values` (the CT, in HU) is `minimum` or
    more. A simple cyst, the gallbladder and the bowel's fluid lie under 20 HU; tumours, necrotic
    ones included, have a median above it."""
    keep = keep.copy()
    for index, box in _kept_boxes(labels, keep):  # each in its box: fast
        keep[index] = np.median(values[box][labels[box] == index]) >= minimum
    return keep


def surrounded_by(labels: np.ndarray, keep: np.ndarray, region: np.ndarray, spacing: tuple[float, float, float],
                  min_fraction: float, shell_mm: float) -> np.ndarray:
    """`keep` narrowed to the components whose surroundings (the voxels within `shell_mm` of them
    that are in no kept component) are at least `min_fraction` in `region`. A liver lesion sits in
    the liver; a mass beside it (a kidney or adrenal tumour, the bowel) touches the liver on one side
    only. `spacing` is (i, j, k) in mm, the arrays [k, j, i]."""
    sampling = tuple(float(s) for s in reversed(spacing))
    reach = [int(np.ceil(shell_mm / s)) for s in sampling]
    result = keep.copy()
    for index, box in _kept_boxes(labels, keep):
        grown = tuple(slice(max(0, b.start - r), b.stop + r) for b, r in zip(box, reach))
        component = labels[grown] == index
        near = ndimage.distance_transform_edt(~component, sampling=sampling) <= shell_mm
        shell = near & ~keep[labels[grown]]
        # a component with no surroundings in the scan (it fills the crop) cannot be judged: kept
        result[index] = not shell.any() or np.count_nonzero(region[grown][shell]) >= min_fraction * shell.sum()
    return result


def _all(count: int) -> np.ndarray:
    keep = np.ones(count + 1, bool)
    keep[0] = False
    return keep


def _kept_boxes(labels: np.ndarray, keep: np.ndarray):
    """(label, bounding box) of each kept component."""
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None and keep[index]:
            yield index, box


def _kept(labels: np.ndarray, keep: np.ndarray, dtype) -> np.ndarray:
    """The voxels whose component is kept (a lookup, faster than np.isin)."""
    return keep.astype(dtype)[labels]


def smoothed_across_slices(values: np.ndarray, box: tuple[slice, ...], slice_spacing_mm: float,
                           sigma_mm: float) -> np.ndarray:
    """`values[box]` smoothed along k (axis 0) by a Gaussian of `sigma_mm`, the slices beyond the box
    taken into account: the same as smoothing the whole volume, then cutting the box out."""
    if sigma_mm <= 0:
        return values[box]
    sigma = sigma_mm / slice_spacing_mm
    reach = int(4 * sigma + 0.5)  # gaussian_filter1d's kernel: 4 sigma on each side
    start, stop = max(box[0].start - reach, 0), min(box[0].stop + reach, len(values))
    slab = ndimage.gaussian_filter1d(values[(slice(start, stop),) + box[1:]], sigma, axis=0, mode="nearest")
    return slab[box[0].start - start:box[0].stop - start]


def clean_masks(liver: np.ndarray, lesion: np.ndarray, spacing: tuple[float, float, float],
                config: InferenceConfig, ct: Optional[np.ndarray] = None,
                probability: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 masks [k, j, i] -> the cleaned pair; the liver returned includes the lesions. `ct` (in
    HU, on the masks' grid) is needed by `config.min_lesion_median_hu` only, the lesion `probability`
    by `config.lesion_grow_threshold` and `config.min_lesion_peak_probability` only.

    Works inside the bounding box of both masks: the labelling costs follow the organ, not the scan.
    """
    if config.min_lesion_median_hu is not None and ct is None:
        raise ValueError("clean_masks needs the CT for min_lesion_median_hu")
    if (growing(config) or config.min_lesion_peak_probability is not None) and probability is None:
        raise ValueError("clean_masks needs the lesion probability for lesion_grow_threshold "
                         "and min_lesion_peak_probability")
    box = bounding_box(np.maximum(liver, lesion))
    # np.zeros, not zeros_like: untouched pages outside the box then cost no memory
    out_liver, out_lesion = np.zeros(liver.shape, liver.dtype), np.zeros(lesion.shape, lesion.dtype)
    if box is None:
        return out_liver, out_lesion
    liver, lesion = liver[box], lesion[box]
    labels, count = label_components(lesion)
    keep = _all(count)
    if config.lesions_inside_liver:
        keep = touching(labels, keep, liver)
    if config.min_lesion_mm3 > 0:
        keep = at_least_voxels(labels, keep, int(np.ceil(config.min_lesion_mm3 / float(np.prod(spacing)))))
    if config.min_lesion_peak_probability is not None:
        # an unsure find is dropped from the lesions but stays liver: the model took it for liver tissue
        keep = peak_at_least(labels, keep, probability[box], config.min_lesion_peak_probability)
    judged = keep
    if config.min_lesion_median_hu is not None:
        keep = median_at_least(labels, keep, ct[box], config.min_lesion_median_hu)
    if config.min_liver_around_lesion > 0:
        keep = surrounded_by(labels, keep, liver, spacing, config.min_liver_around_lesion,
                             config.liver_around_lesion_mm)
    lesion = _kept(labels, keep, lesion.dtype)
    if growing(config):
        # the rules judge what the model is sure of; the lesions they keep then grow over their
        # unsure rim, inside the liver and never into a component the rules dropped
        closed = (liver == 0) | (~keep[labels] & (labels > 0))
        over = smoothed_across_slices(probability, box, spacing[2], config.lesion_grow_smoothing_mm)
        lesion = grown(lesion, np.where(closed, 0, over), config.lesion_grow_threshold)
    if config.dropped_lesions_leave_liver:
        # what the fluid and edge rules drop is fluid or a mass beside the liver: not liver either
        liver = np.where((judged & ~keep)[labels], 0, liver).astype(liver.dtype)
    liver = np.maximum(liver, lesion)
    if config.largest_liver_component and liver.any():
        liver = largest_component(liver)
        if config.liver_neck_mm > 0:
            # what the liver output took in through a thin neck (the bowel at its tip, the veins
            # under the heart) is no liver; a lesion there is kept whole where it touches the liver
            liver = without_necks(liver, spacing, config.liver_neck_mm)
            lesion_labels, lesion_count = label_components(lesion)
            lesion = _kept(lesion_labels, touching(lesion_labels, _all(lesion_count), liver), lesion.dtype)
            liver = np.maximum(liver, lesion)
        lesion = lesion & liver
    out_liver[box], out_lesion[box] = liver, lesion
    return out_liver, out_lesion
