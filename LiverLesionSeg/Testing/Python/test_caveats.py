"""The cautions told with a result (caveats.result_caveats): each sign on a small CT made for it,
and nothing on one that shows none; the whole shared cases are in test_cli_segment and test_mrml."""

import numpy as np
import pytest

from LiverLesionSegLib.caveats import measured_caveats, result_caveats
from LiverLesionSegLib.infer import Segmentation
from LiverLesionSegLib.volume import Volume

SHAPE = (30, 80, 80)  # slices, rows, columns


def _ct(liver_hu: float = 110.0, slice_mm: float = 2.5, direction=np.eye(3), offset: float = 0.0,
        liver_slices=slice(5, 25), pixel_mm: float = 2.0, origin=(0.0, 0.0, 0.0)) -> tuple[Volume, Segmentation]:
    """An abdomen: air around a body of 40 HU holding a liver of `liver_hu` (100 cm² a slice), with
    its segmentation (the liver only)."""
    ct = np.full(SHAPE, -1000.0, np.float32)
    ct[:, 10:70, 10:70] = 40.0
    liver = np.zeros(SHAPE, np.uint8)
    liver[liver_slices, 15:65, 15:65] = 1
    ct[liver > 0] = liver_hu
    spacing = (pixel_mm, pixel_mm, slice_mm)
    volume = Volume(ct + offset, spacing, origin, np.asarray(direction, float))
    mask = volume.with_array(liver)
    return volume, Segmentation(mask, mask.with_array(np.zeros(SHAPE, np.uint8)),
                                mask.with_array(np.zeros(SHAPE, np.float32)))


def test_a_whole_enhanced_liver_on_thin_slices_gets_no_caution():
    assert result_caveats(*_ct()) == []


@pytest.mark.parametrize("liver_hu", [55.0, 70.0])
def test_a_weakly_enhanced_liver_is_told(liver_hu):
    caveats = result_caveats(*_ct(liver_hu=liver_hu))
    assert len(caveats) == 1 and f"median CT value is {liver_hu:.0f} HU" in caveats[0]
    assert "arterial phase" in caveats[0] and "fatty liver" in caveats[0]


def test_the_liver_median_leaves_out_the_lesions():
    """A liver of 110 HU with a dark lesion over most of it is still an enhanced liver."""
    ct, result = _ct()
    lesion = np.zeros(SHAPE, np.uint8)
    lesion[5:25, 15:65, 15:50] = 1
    ct.array[lesion > 0] = 30.0
    result.lesion = result.lesion.with_array(lesion)
    assert result_caveats(ct, result) == []


def test_thick_slices_are_told():
    caveats = result_caveats(*_ct(slice_mm=5.0))
    assert len(caveats) == 1 and "5.0 mm apart" in caveats[0]


@pytest.mark.parametrize("slices, flipped, ends", [
    (slice(0, 20), False, "lower"), (slice(10, 30), False, "upper"), (slice(0, 30), False, "lower and upper"),
    (slice(0, 20), True, "upper"),  # the array's first slice is the head's end when k runs to the feet
])
def test_a_liver_cut_by_the_scan_is_told_at_the_patients_end(slices, flipped, ends):
    direction = np.diag([1.0, 1.0, -1.0]) if flipped else np.eye(3)
    caveats = result_caveats(*_ct(liver_slices=slices, direction=direction))
    assert len(caveats) == 1 and f"reaches the scan's {ends} end" in caveats[0]
    assert "lower bound" in caveats[0]


def test_a_lobes_tip_on_the_last_slice_is_not_a_cut():
    ct, result = _ct()
    liver = result.liver.array.copy()
    liver[-1, 30:35, 30:35] = 1  # 1 cm²
    assert result_caveats(ct, Segmentation(result.liver.with_array(liver), result.lesion,
                                           result.lesion_probability)) == []


def test_no_liver_and_a_small_liver_are_told():
    ct, result = _ct()
    empty = Segmentation(result.liver.with_array(np.zeros(SHAPE, np.uint8)), result.lesion, result.lesion_probability)
    assert [c.startswith("no liver was found") for c in result_caveats(ct, empty)] == [True]
    small = np.zeros(SHAPE, np.uint8)
    small[10:18, 30:45, 30:45] = 1  # 1800 voxels of 10 mm³
    caveats = result_caveats(ct, Segmentation(result.liver.with_array(small), result.lesion,
                                              result.lesion_probability))
    assert len(caveats) == 1 and "only 18 mL" in caveats[0]


def test_a_liver_larger_than_any_is_told():
    """Voxel spacing 50 x 50 x 100 mm (a header gone wrong) gave an 84,882,000 mL liver untold."""
    ct, result = _ct()
    huge = result.liver.with_array(result.liver.array)
    huge.spacing = (50.0, 50.0, 3.0)
    caveats = result_caveats(ct, Segmentation(huge, result.lesion, result.lesion_probability))
    assert any("more than even a very enlarged liver" in c for c in caveats)
    assert not any("very enlarged" in c for c in result_caveats(ct, result))


def test_ct_values_without_their_rescale_are_told():
    """Stored values with the 1024 of the rescale intercept left out: air at 24, the liver at 1134."""
    caveats = result_caveats(*_ct(offset=1024.0))
    assert len(caveats) == 2
    assert "almost no air" in caveats[0] and "Hounsfield units" in caveats[0]
    assert "median of 1134" in caveats[1]


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, -1.0, 1.0])])  # saved by SimpleITK, by nibabel
def test_an_image_saved_without_its_geometry_is_told_that_its_measures_are_in_voxels(direction):
    """1 mm voxels at 0, 0, 0 along the patient's axes: what a bare array saved as an image gets. A CT
    keeps its scanner's position; the lesion table would be in voxels, not mL and mm, unsaid."""
    ct, result = _ct(slice_mm=1.0, pixel_mm=1.0, direction=direction)
    caveats = result_caveats(ct, result)
    assert len(caveats) == 2 and "holds no voxel spacing or position" in caveats[0]
    assert "counted in voxels" in caveats[0]
    assert measured_caveats([], None, ct) == caveats[:1]
    placed = _ct(slice_mm=1.0, pixel_mm=1.0, direction=direction, origin=(-180.0, -160.0, -420.0))[0]
    assert measured_caveats([], None, placed) == []
    assert not any("no voxel spacing" in c for c in result_caveats(placed, result))
