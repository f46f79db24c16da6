"""Clean-up of the thresholded masks on the CT's grid.

The liver keeps its largest 3-D component, less what joins it through a thin neck; lesions are kept
only where they touch the liver, where enough of what surrounds them is liver, above a minimum
volume, above fluid density and of another density than the liver; the lesions kept can then grow
over their unsure rim inside the liver (`grown`: hysteresis thresholding); what the fluid and edge
rules drop can be taken out of the liver too; the liver's edge can then move, within a few mm, to
where the CT is of the liver's density; the liver mask includes its lesions (the organ, as the
reference masks draw it).

Each lesion rule keeps or drops whole components, so the lesion mask is labelled once and every rule
narrows one array of kept labels (`keep[label]`, `keep[0]` the background, never kept).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from .config import InferenceConfig
from .masks import array_sampling, ball, bounding_box, dilated, eroded, label_components
from .slabs import by_slabs


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of `mask` (the first in scan order of those as large), in
    `mask`'s dtype."""
    labels, count = label_components(mask)
    if count <= 1:
        return mask
    # counted over the labelled voxels only: a liver fills a third of its box, and bincount widens
    # every label it counts to 64 bits
    sizes = np.bincount(labels[labels > 0], minlength=count + 1)
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
    box = bounding_box(mask > 0)
    if box is None:
        return mask
    structure = ball(array_sampling(spacing), radius_mm)
    # within the mask's bounding box, border_value 1: where the mask meets the box's faces it is cut
    # by the scan's edge, or its farthest point, not a surface to be eroded
    core = eroded(mask[box], structure, border_value=1)
    if not core.any():
        return mask
    core = largest_component(core.astype(np.uint8)) > 0
    out = np.zeros_like(mask)
    out[box] = ((mask[box] > 0) & dilated(core, structure)).astype(mask.dtype)
    return out


LIVER_DENSITY_PERCENTILES = (5.0, 95.0)  # the CT values taken for the liver's own density
EDGE_SMOOTHING_MM = 1.0  # the in-plane Gaussian the CT is smoothed by before the edge follows it


def with_edge_on_the_ct(liver: np.ndarray, lesion: np.ndarray, ct: np.ndarray, spacing: tuple[float, float, float],
                        band_mm: float) -> np.ndarray:
    """`liver` with its surface moved to follow the CT within `band_mm` of it: voxels just outside
    it of the liver's own density (the `LIVER_DENSITY_PERCENTILES` of its CT values, `lesion` left
    out) join it, voxels just inside it of another density (not `lesion`) leave it. The network
    draws the liver at its own coarse resolution; the CT shows where its edge is. `spacing` is
    (i, j, k) in mm, the arrays [k, j, i]."""
    inside = liver > 0
    parenchyma = inside & (lesion == 0)
    if band_mm <= 0 or not parenchyma.any():
        return liver
    of_liver_density = liver_density(ct, parenchyma, spacing)
    structure = ball(array_sampling(spacing), band_mm)
    outer_band = dilated(inside, structure) & ~inside
    inner_band = inside & ~eroded(inside, structure, border_value=1)
    refined = (inside | (outer_band & of_liver_density)) & ~(inner_band & ~of_liver_density & (lesion == 0))
    return refined.astype(liver.dtype)


def liver_density(ct: np.ndarray, parenchyma: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """The voxels of the liver's own density: the CT, smoothed by `EDGE_SMOOTHING_MM` in the slice,
    within the `LIVER_DENSITY_PERCENTILES` of its values over `parenchyma` (the liver less its
    lesions). `spacing` is (i, j, k) in mm, the arrays [k, j, i]."""
    low, high = np.percentile(ct[parenchyma], LIVER_DENSITY_PERCENTILES)
    # each voxel judged with its neighbours in the slice: a lone voxel of noise moves no edge
    sigma = [0.0] + [EDGE_SMOOTHING_MM / s for s in array_sampling(spacing)[1:]]

    def of_density(part: np.ndarray) -> np.ndarray:
        smoothed = ndimage.gaussian_filter(part.astype(np.float32), sigma)
        return (smoothed >= low) & (smoothed <= high)
    return by_slabs(of_density, ct, 0)  # smoothed in the slice only: the slabs need no slices beyond them


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


GAS_HU = -400.0  # below this a voxel is more than half gas: no soft tissue, fat (-100 HU) or fluid is
# The lung above a lesion at the dome blurs into it over a slice's thickness: at 1.6 mm (3D-IRCADb's)
# one slice, at 0.625 mm three. So the surface left out is this deep along the slices' axis (at least
# one slice), and one voxel deep in-plane.
GAS_SURFACE_MM = 1.6


def gas_at_most(labels: np.ndarray, keep: np.ndarray, values: np.ndarray, spacing: tuple[float, float, float],
                max_mm3: float) -> np.ndarray:
    """`keep` narrowed to the components holding at most `max_mm3` of gas (`values`, the CT, below
    `GAS_HU`) beneath their surface. A liver tumour holds none; a find with gas in it is the stomach
    or the bowel, whose food and fluid a model may take for a dark lesion. The surface voxels are
    left out: a lesion at the dome meets the lung there, shared by partial volume (a reference
    lesion of 3Dircadb1.17 has 27 mm3 of them), `GAS_SURFACE_MM` deep along the slices' axis so
    that thin slices do not turn that blur into gas. `spacing` is (i, j, k) in mm."""
    gas = values < GAS_HU
    with_gas = np.zeros_like(keep)
    with_gas[labels[gas & (labels > 0)]] = True  # most lesions hold none: only these are looked into
    keep = keep.copy()
    depth = max(1, int(np.ceil(GAS_SURFACE_MM / spacing[2] - 0.05)))  # slices; 0.05: 1.6000001 mm is one
    beneath = np.zeros((2 * depth + 1, 3, 3), bool)  # the in-plane neighbours and `depth` slices each way
    beneath[depth] = ndimage.generate_binary_structure(2, 1)
    beneath[:, 1, 1] = True
    for index, box in _kept_boxes(labels, keep & with_gas):
        inside = ndimage.binary_erosion(labels[box] == index, structure=beneath)
        keep[index] = np.count_nonzero(inside & gas[box]) * float(np.prod(spacing)) <= max_mm3
    return keep


# the liver a lesion is compared with: from 2 mm (past the blurred rim both share) to 6 mm around it
CONTRAST_RING_MM = (2.0, 6.0)
MIN_RING_VOXELS = 20  # fewer liver voxels around a lesion than this: it cannot be judged, and is kept


def contrasting(labels: np.ndarray, keep: np.ndarray, values: np.ndarray, liver: np.ndarray,
                spacing: tuple[float, float, float], min_contrast: float) -> np.ndarray:
    """`keep` less the components whose median of `values` (the CT, in HU) lies within
    `min_contrast` of both the liver around them (`liver` within `CONTRAST_RING_MM` of them) and the
    whole liver (its median), the liver taken outside every component. A lesion shows darker or
    brighter than the liver; a find at the liver's own density, near and far, is the model's
    mistake. Both are asked: the liver around a lesion the model found only in part holds the rest
    of the lesion, and a liver is not one density throughout (fat, perfusion). `spacing` is
    (i, j, k) in mm, the arrays [k, j, i]."""
    parenchyma = (liver > 0) & (labels == 0)
    if not parenchyma.any():
        return keep
    liver_median = np.median(values[parenchyma])
    sampling = array_sampling(spacing)
    inner, outer = CONTRAST_RING_MM
    result = keep.copy()
    for index, box in _kept_boxes(labels, keep):
        around = _widened(box, labels.shape, spacing, outer)
        component = labels[around] == index
        median = np.median(values[around][component])
        if abs(median - liver_median) >= min_contrast:
            continue
        distance = ndimage.distance_transform_edt(~component, sampling=sampling)
        ring = (distance > inner) & (distance <= outer) & parenchyma[around]
        if np.count_nonzero(ring) >= MIN_RING_VOXELS:
            result[index] = abs(median - np.median(values[around][ring])) >= min_contrast
    return result


def surrounded_by(labels: np.ndarray, keep: np.ndarray, region: np.ndarray, spacing: tuple[float, float, float],
                  min_fraction: float, shell_mm: float) -> np.ndarray:
    """`keep` narrowed to the components whose surroundings (the voxels within `shell_mm` of them
    that are in no kept component) are at least `min_fraction` in `region`. A liver lesion sits in
    the liver; a mass beside it (a kidney or adrenal tumour, the bowel) touches the liver on one side
    only. `spacing` is (i, j, k) in mm, the arrays [k, j, i]."""
    sampling = array_sampling(spacing)
    result = keep.copy()
    for index, box in _kept_boxes(labels, keep):
        grown = _widened(box, labels.shape, spacing, shell_mm)
        component = labels[grown] == index
        near = ndimage.distance_transform_edt(~component, sampling=sampling) <= shell_mm
        shell = near & ~keep[labels[grown]]
        # a component with no surroundings in the scan (it fills the crop) cannot be judged: kept
        result[index] = not shell.any() or np.count_nonzero(region[grown][shell]) >= min_fraction * shell.sum()
    return result


def grown_lesions(lesion: np.ndarray, dropped: np.ndarray, liver: np.ndarray, over: np.ndarray,
                  ct: Optional[np.ndarray], spacing: tuple[float, float, float],
                  config: InferenceConfig) -> np.ndarray:
    """The kept lesions grown over their unsure rim (`over` at or above the grow threshold) inside the
    liver, never into a component a rule dropped (`dropped`). With `lesion_grow_beyond_liver_mm`, a
    lesion also grows that far beyond the liver where what it takes in there is the same tissue as
    its core (the medians of `ct` within `lesion_beyond_liver_hu_tolerance`): the part of a tumour
    that bulges out of the liver, which the liver output leaves out, and not the fat, fluid or bowel
    beside a false lesion at the liver's edge. With `lesion_grow_max_mm`, no farther from the lesion
    than that."""
    low = config.lesion_grow_threshold
    if config.lesion_grow_max_mm > 0:
        over = np.where(near(lesion, over >= low, spacing, config.lesion_grow_max_mm), over, 0)
    inside = grown(lesion, np.where(dropped | (liver == 0), 0, over), low)
    if config.lesion_grow_beyond_liver_mm <= 0:
        return inside
    anywhere = grown(lesion, np.where(dropped, 0, over), low) > 0  # a small region: the distances are taken there
    reach = near(liver, anywhere, spacing, config.lesion_grow_beyond_liver_mm)
    beyond = grown(lesion, np.where(dropped | ~reach, 0, over), low)
    labels, count = label_components(beyond)
    same_tissue = _all(count)
    for index, box in _kept_boxes(labels, same_tissue):
        component = labels[box] == index
        outside = component & (liver[box] == 0)
        if outside.any():
            core = component & (lesion[box] > 0)  # never empty: the component grew from a kept lesion
            difference = np.median(ct[box][outside]) - np.median(ct[box][core])
            same_tissue[index] = abs(difference) <= config.lesion_beyond_liver_hu_tolerance
    return np.where(same_tissue[labels], beyond, inside).astype(lesion.dtype)


def near(mask: np.ndarray, candidates: np.ndarray, spacing: tuple[float, float, float], mm: float) -> np.ndarray:
    """The voxels of `mask`, and of `candidates` within `mm` of it. The distances are taken around
    each connected piece of the candidates outside the mask, in its own box: they are few and small.
    `spacing` is (i, j, k) in mm, the arrays [k, j, i]."""
    result = mask > 0
    if mm <= 0:
        return result
    sampling = array_sampling(spacing)
    outside = candidates & ~result
    labels, count = label_components(outside)
    for index, box in _kept_boxes(labels, _all(count)):
        around = _widened(box, labels.shape, spacing, mm)
        if result[around].any():
            distance = ndimage.distance_transform_edt(~result[around], sampling=sampling)
            piece = labels[around] == index
            result[around] |= piece & (distance <= mm)
    return result


def _widened(box: tuple[slice, ...], shape: tuple[int, ...], spacing: tuple[float, float, float],
             mm: float) -> tuple[slice, ...]:
    """`box` grown by `mm` on every side, within an array of `shape`; `spacing` is (i, j, k) in mm,
    the array [k, j, i]."""
    reach = [int(np.ceil(mm / s)) for s in array_sampling(spacing)]
    return tuple(slice(max(0, b.start - r), min(n, b.stop + r)) for b, r, n in zip(box, reach, shape))


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
                           sigma_mm: float, floor: Optional[float] = None) -> np.ndarray:
    """`values[box]` smoothed along k (axis 0) by a Gaussian of `sigma_mm`, the slices beyond the box
    taken into account: the same as smoothing the whole volume, then cutting the box out. With
    `floor`, only the values at or above it are exact, the rest may be 0: only the columns and slices
    within the Gaussian's reach of a value at or above `floor` are smoothed (a weighted mean is never
    above the highest value it takes in), a small part of the liver's box for a lesion probability."""
    if sigma_mm <= 0:
        return values[box]
    sigma = sigma_mm / slice_spacing_mm
    reach = int(4 * sigma + 0.5)  # gaussian_filter1d's kernel: 4 sigma on each side
    start, stop = max(box[0].start - reach, 0), min(box[0].stop + reach, len(values))
    if floor is None:
        slab = ndimage.gaussian_filter1d(values[(slice(start, stop),) + box[1:]], sigma, axis=0, mode="nearest")
        return slab[box[0].start - start:box[0].stop - start]
    result = np.zeros(tuple(b.stop - b.start for b in box), values.dtype)
    high = bounding_box(values[(slice(start, stop),) + box[1:]] >= floor)
    if high is not None:
        # the slices of the box within reach of a high value, and the columns that hold one
        first = max(start + high[0].start - reach, box[0].start)
        last = min(start + high[0].stop + reach, box[0].stop)
        if first < last:
            part = (slice(first, last),) + tuple(slice(b.start + h.start, b.start + h.stop)
                                                 for b, h in zip(box[1:], high[1:]))
            result[tuple(slice(p.start - b.start, p.stop - b.start) for p, b in zip(part, box))] = \
                smoothed_across_slices(values, part, slice_spacing_mm, sigma_mm)
    return result


def clean_masks(liver: np.ndarray, lesion: np.ndarray, spacing: tuple[float, float, float],
                config: InferenceConfig, ct: Optional[np.ndarray] = None,
                probability: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 masks [k, j, i] -> the cleaned pair; the liver returned includes the lesions. `ct` (in
    HU, on the masks' grid) is needed by `config.min_lesion_median_hu`,
    `config.min_lesion_contrast_hu`, `config.max_lesion_gas_mm3`, `config.liver_edge_mm` and
    `config.lesion_grow_beyond_liver_mm` only, the lesion `probability` by
    `config.lesion_grow_threshold` and `config.min_lesion_peak_probability` only.

    Works inside the bounding box of both masks: the labelling costs follow the organ, not the scan.
    """
    if ct is None and (config.min_lesion_median_hu is not None or config.min_lesion_contrast_hu is not None or
                       config.max_lesion_gas_mm3 is not None or config.liver_edge_mm > 0 or
                       (growing(config) and config.lesion_grow_beyond_liver_mm > 0)):
        raise ValueError("clean_masks needs the CT for min_lesion_median_hu, min_lesion_contrast_hu, "
                         "max_lesion_gas_mm3, liver_edge_mm and lesion_grow_beyond_liver_mm")
    if (growing(config) or config.min_lesion_peak_probability is not None) and probability is None:
        raise ValueError("clean_masks needs the lesion probability for lesion_grow_threshold "
                         "and min_lesion_peak_probability")
    box = bounding_box(np.maximum(liver, lesion))
    reach = max(config.lesion_grow_beyond_liver_mm if growing(config) else 0.0, config.liver_edge_mm)
    if box is not None and reach > 0:  # room for what grows beyond the liver output, and its edge band
        box = _widened(box, liver.shape, spacing, reach)
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
    if config.min_lesion_contrast_hu is not None:
        # a find at the liver's own density stays liver, as an unsure one does
        keep = contrasting(labels, keep, ct[box], liver, spacing, config.min_lesion_contrast_hu)
    judged = keep
    if config.min_lesion_median_hu is not None:
        keep = median_at_least(labels, keep, ct[box], config.min_lesion_median_hu)
    if config.max_lesion_gas_mm3 is not None:
        keep = gas_at_most(labels, keep, ct[box], spacing, config.max_lesion_gas_mm3)
    if config.min_liver_around_lesion > 0:
        keep = surrounded_by(labels, keep, liver, spacing, config.min_liver_around_lesion,
                             config.liver_around_lesion_mm)
    lesion = _kept(labels, keep, lesion.dtype)
    if growing(config):
        # the rules judge what the model is sure of; the lesions they keep then grow over their unsure rim
        over = smoothed_across_slices(probability, box, spacing[2], config.lesion_grow_smoothing_mm,
                                      floor=config.lesion_grow_threshold)
        dropped = ~keep[labels] & (labels > 0)
        lesion = grown_lesions(lesion, dropped, liver, over, None if ct is None else ct[box], spacing, config)
    if config.dropped_lesions_leave_liver:
        # what the fluid, gas and edge rules drop is fluid, the bowel or a mass beside the liver: not liver
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
    if config.liver_edge_mm > 0:
        liver = with_edge_on_the_ct(liver, lesion, ct[box], spacing, config.liver_edge_mm)
        if config.largest_liver_component:
            liver = np.maximum(largest_component(liver), lesion)  # a piece the band cut off goes
    out_liver[box], out_lesion[box] = liver, lesion
    return out_liver, out_lesion
