"""Volume geometry: matrices, grids, and reorientation to axial LPS (checked against SimpleITK)."""

import itertools

import numpy as np
import pytest
import SimpleITK as sitk

from LiverLesionSegLib.errors import GeometryError
from LiverLesionSegLib.volume import Case, Volume, to_axial_lps


def _axis_aligned_directions():
    """All 48 signed permutation matrices: every orientation a scanner or a file can store."""
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            d = np.zeros((3, 3))
            for column, (row, sign) in enumerate(zip(perm, signs)):
                d[row, column] = sign
            yield d


def test_ijk_to_lps_and_ras():
    v = Volume(np.zeros((4, 5, 6)), (0.5, 0.75, 2.0), (10, 20, 30))
    m = v.ijk_to_lps()
    assert np.allclose(m @ [1, 2, 3, 1], [10.5, 21.5, 36, 1])
    assert np.allclose(v.ijk_to_ras() @ [1, 2, 3, 1], [-10.5, -21.5, 36, 1])
    assert np.allclose(v.physical_points([[1, 2, 3]]), [[10.5, 21.5, 36]])


def test_from_ijk_to_ras_round_trip():
    d = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)
    v = Volume(np.zeros((3, 4, 5)), (0.7, 0.8, 2.5), (1, 2, 3), d)
    back = Volume.from_ijk_to_ras(v.array, v.ijk_to_ras())
    assert back.same_grid(v)


@pytest.mark.parametrize("direction", list(_axis_aligned_directions()))
def test_to_axial_lps_matches_simpleitk_and_undoes(direction):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 1000, (4, 5, 6)).astype(np.int16)
    v = Volume(array, (0.6, 0.9, 2.5), (-10, 20, 35), direction)
    canonical, reorientation = to_axial_lps(v)
    reference = sitk.DICOMOrient(v.to_sitk(), "LPS")
    assert np.array_equal(canonical.array, sitk.GetArrayFromImage(reference))
    assert np.allclose(canonical.origin, reference.GetOrigin())
    assert np.allclose(canonical.spacing, reference.GetSpacing())
    assert np.allclose(canonical.direction, np.eye(3))
    assert np.array_equal(reorientation.undo(canonical.array), array)
    # the same voxel sits at the same physical point before and after
    k, j, i = 1, 2, 3
    value = array[k, j, i]
    (nk, nj, ni), = np.argwhere(reorientation.apply(np.arange(array.size).reshape(array.shape))
                                == np.ravel_multi_index((k, j, i), array.shape))
    assert canonical.array[nk, nj, ni] == value
    assert np.allclose(v.physical_points([[i, j, k]]), canonical.physical_points([[ni, nj, nk]]))


def test_oblique_volume_lands_on_nearest_order():
    angle = np.deg2rad(20)
    d = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    v = Volume(np.zeros((3, 4, 5)), (1, 1, 1), (0, 0, 0), d[:, [1, 0, 2]])
    canonical, reorientation = to_axial_lps(v)
    assert reorientation.axes == (0, 2, 1)
    assert np.allclose(canonical.direction, d)  # still oblique, axes in the nearest order


def test_two_dimensional_array_is_refused():
    with pytest.raises(GeometryError, match="3-D"):
        Volume(np.zeros((5, 6)), (1, 1, 1), (0, 0, 0), source="slice.dcm")


def test_case_check_refuses_a_mask_on_another_grid():
    ct = Volume(np.zeros((3, 4, 5), np.int16), (1, 1, 2), (0, 0, 0), source="ct")
    shifted = Volume(np.zeros((3, 4, 5), np.uint8), (1, 1, 2), (0, 0, 5), source="liver.nii.gz")
    with pytest.raises(GeometryError, match="liver.nii.gz: the liver mask .* does not lie on the CT's grid"):
        Case("x", ct, shifted, ct.with_array(np.zeros((3, 4, 5), np.uint8))).check()


def test_label_map_lesion_wins():
    ct = Volume(np.zeros((1, 1, 3), np.int16), (1, 1, 1), (0, 0, 0))
    case = Case("x", ct, ct.with_array(np.array([[[1, 1, 0]]], np.uint8)), ct.with_array(np.array([[[0, 1, 1]]], np.uint8)))
    assert case.label_map().tolist() == [[[1, 2, 2]]]
