"""Cautions about a result: signs that the CT is not what the model learned from, or that the
liver goes on beyond the scan, found from the CT and the masks alone after segmentation; and about
a labelled case, whose label read as the liver may be another organ's.

They do not change the result. The commands log each one as a warning (stderr, or a JSON `log`
event), the Slicer panel shows them under its result and stores them on the segmentation node, so
that a reader of the masks knows when to trust them less. The bounds come from the shared cases:
their livers in the portal venous and equilibrium phases have a median of 94 to 120 HU, in the
arterial phase 55 and 60 HU, where the model's liver and lesions are worst (the model card's known
failure modes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from .flips import CLEARLY_RIGHT, liver_to_the_right
from .head_feet import cut_ends, head_and_feet_swapped
from .volume import Case, Volume, to_axial_lps

if TYPE_CHECKING:  # infer imports torch, which reading a case's labels does not need
    from .infer import Segmentation

MIN_ENHANCED_LIVER_HU = 75.0  # below: an arterial phase, a CT without contrast, or a fatty liver
MAX_LIVER_HU = 250.0  # above: not Hounsfield units (no rescale), or not a CT
MIN_AIR_SHARE = 0.01  # share of voxels under AIR_BELOW_HU in a CT of the abdomen (outside air, lung, bowel gas)
AIR_BELOW_HU = -500.0
THICK_SLICES_MM = 4.0
SMALL_LIVER_ML = 300.0
MOST_OF_THE_LIVER = 0.6  # lesions beyond this share of a measured liver: rare, and what swapped labels give
LARGE_LIVER_ML = 6000.0  # beyond even a very enlarged liver (4000 to 6000 mL): wrong spacing, or not the liver


def result_caveats(ct: Volume, result: Segmentation) -> list[str]:
    """What a reader of `result` (a segmentation of `ct`) should be told to check, one sentence each;
    empty when nothing looks amiss."""
    found = geometry_caveats(ct)
    air_share = float(np.count_nonzero(ct.array < AIR_BELOW_HU)) / ct.array.size
    if air_share < MIN_AIR_SHARE:
        found.append(f"the image holds almost no air ({100 * air_share:.1f}% of voxels under {AIR_BELOW_HU:.0f}): "
                     "it may not be a CT in Hounsfield units as scanned (clipped to a window, or cropped tight "
                     "round the liver), which the model was not made for; check the result against the image")
    if result.flipped:
        found.append(f"the CT looks stored with {result.flipped} swapped (the liver on the patient's left, or the "
                     "spine in front: situs inversus, or a wrong orientation in the file): it was segmented "
                     "flipped back and the result put onto the CT as stored; check the image's orientation")
    liver = result.liver.array > 0
    liver_ml = result.liver_ml
    if liver_ml == 0:
        found.append("no liver was found: the scan may not cover the upper abdomen, or may not be a "
                     "contrast-enhanced CT of it")
        return found
    axial, _ = to_axial_lps(result.liver)  # array axis 0 now runs from the feet to the head
    cut = cut_ends(axial.array, axial.spacing)
    if result.head_feet_swapped or head_and_feet_swapped(to_axial_lps(ct)[0].array, axial.array > 0, axial.spacing):
        done = ("it was segmented the other way round, as the model learned, and the result put onto the CT as "
                "stored; " if result.head_feet_swapped else "")
        found.append("the lungs' air lies below the liver, not above it: the file looks stored with its head and feet "
                     f"swapped (its slices stacked in the reverse of its header's order): {done}the lesions' "
                     "positions are mirrored head to feet; check the image in a coronal view")
    if cut:
        found.append(f"the liver reaches the scan's {' and '.join(cut)} end: it goes on beyond the scan, so its "
                     f"volume ({liver_ml:.0f} mL) is a lower bound and a lesion there may be cut or missed")
    elif liver_ml < SMALL_LIVER_ML:
        found.append(f"the liver found is only {liver_ml:.0f} mL (an adult's is about 1000 to 2500 mL): check "
                     "that it is the liver")
    if liver_ml > LARGE_LIVER_ML:
        found.append(f"the liver found is {liver_ml:.0f} mL, more than even a very enlarged liver (an adult's is "
                     "about 1000 to 2500 mL): check the image's voxel spacing and that the result is the liver")
    parenchyma = liver & (result.lesion.array == 0)
    median_hu = float(np.median(ct.array[parenchyma])) if parenchyma.any() else float(np.median(ct.array[liver]))
    if median_hu > MAX_LIVER_HU:
        found.append(f"the liver found has a median of {median_hu:.0f}, far above a liver's CT value: the image "
                     "may not be in Hounsfield units; check the result against the image")
    elif median_hu < MIN_ENHANCED_LIVER_HU:
        found.append(f"the liver's median CT value is {median_hu:.0f} HU, as in an arterial phase, a CT without "
                     "contrast or a fatty liver: the model learned mostly from portal venous phases of livers that "
                     "are not fatty and misses more liver and lesions here, and can take in the heart's wall at the "
                     "dome; a lesion of about the liver's density, as lesions in a fatty liver can be, is dropped "
                     "(keep lesions of liver density to see it); check the liver's edges and the probability map")
    slice_mm = axial.spacing[2]
    if slice_mm > THICK_SLICES_MM:
        found.append(f"the slices are {slice_mm:.1f} mm apart: on slices this thick the model marks more false "
                     "lesions and misses small ones; use thinner slices where the scanner made them")
    return found


def geometry_caveats(ct: Volume) -> list[str]:
    """A caution where `ct` holds no voxel spacing or position (saved as a bare array): its measures
    are counted in voxels."""
    if not ct.carries_no_geometry:
        return []
    return ["the image holds no voxel spacing or position (1 x 1 x 1 mm voxels at 0, 0, 0, as a file written from "
            "a bare array is): volumes in mL and diameters in mm are counted in voxels and may be far off; save "
            "the image with the CT's own spacing and position (the scanner's DICOM, or its affine) and run again"]


def measured_caveats(lesions: Sequence, liver_ml: Optional[float], ct: Volume) -> list[str]:
    """What a reader of a segmentation measured as given (`measure`, Measure again) on `ct` should check."""
    found = geometry_caveats(ct)
    if not liver_ml or not lesions:
        return found
    share = sum(lesion.volume_ml for lesion in lesions) / liver_ml
    if share <= MOST_OF_THE_LIVER:
        return found
    return found + [f"the lesions make up {100 * share:.0f} % of the liver: if they do not, the labels may be "
                    "swapped (1 liver, 2 lesion) or the liver's segment named as a lesion"]


def label_caveats(case: Case) -> list[str]:
    """What a labelled case's reader should check of the label read as its liver: too small for a liver
    where the whole of it lies in the scan, or on the patient's left. Either way it may be another organ's
    label (a dataset of organs given without the dataset.json that names its values: a spleen's, a
    kidney's), or the image stored mirrored, and training would learn it as the liver."""
    if case.liver is None or not case.liver.array.any():
        return []
    axial, _ = to_axial_lps(case.liver)  # array axis 0 from the feet to the head, axis 2 to the left
    liver = axial.array > 0
    found = []
    liver_ml = float(np.count_nonzero(liver)) * case.liver.voxel_volume_mm3 / 1000.0
    if not cut_ends(liver, axial.spacing) and liver_ml < SMALL_LIVER_ML:
        found.append(f"holds {liver_ml:.0f} mL, the whole of it within the scan (an adult's liver holds about "
                     "1000 to 2500 mL)")
    if liver_to_the_right(liver, to_axial_lps(case.ct)[0].array) < -CLEARLY_RIGHT:
        found.append("lies on the patient's left")
    if not found:
        return []
    return [f"what is read as the liver {' and '.join(found)}: it may be another organ's label (name the label map's "
            "values in a dataset.json beside it) or the image may be stored mirrored; check the case before "
            "training on it"]
