"""The lesion table against sizes, diameters and positions worked out by hand."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from LiverLesionSegLib.lesions import axial_diameter, lesion_table, tumour_burden
from LiverLesionSegLib.volume import Volume


def volume(array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None) -> Volume:
    return Volume(array.astype(np.uint8), spacing, origin, np.eye(3) if direction is None else direction)


def brute_force_diameter(plane: np.ndarray, spacing_i: float, spacing_j: float) -> float:
    """Largest distance between any two corners of any two pixels (all of them, no shortcuts)."""
    j, i = np.nonzero(plane)
    corners = np.concatenate([np.column_stack([(i + di) * spacing_i, (j + dj) * spacing_j])
                              for di in (-0.5, 0.5) for dj in (-0.5, 0.5)])
    differences = corners[:, None, :] - corners[None, :, :]
    return float(np.sqrt((differences ** 2).sum(-1)).max())


def test_cube():
    n = 4
    array = np.zeros((8, 10, 10))
    array[2:2 + n, 3:3 + n, 5:5 + n] = 1
    (lesion,) = lesion_table(volume(array, spacing=(0.5, 0.5, 2.0)))
    assert lesion.number == 1
    assert lesion.voxels == 64
    assert lesion.volume_ml == pytest.approx(64 * 0.5 * 0.5 * 2.0 / 1000)  # 0.032 mL
    # The square's diagonal, 4 pixels of 0.5 mm on each side.
    assert lesion.longest_axial_diameter_mm == pytest.approx(math.hypot(2.0, 2.0))
    assert lesion.perpendicular_diameter_mm == pytest.approx(math.hypot(2.0, 2.0))  # the other diagonal
    assert (lesion.first_slice, lesion.last_slice) == (2, 5)
    assert lesion.median_hu is None  # no CT given
    # Centre voxel (i, j, k) = (6.5, 4.5, 3.5) with an identity geometry.
    assert lesion.centroid_lps == pytest.approx((6.5 * 0.5, 4.5 * 0.5, 3.5 * 2.0))
    assert lesion.centroid_ras == pytest.approx((-6.5 * 0.5, -4.5 * 0.5, 3.5 * 2.0))


def test_rectangle_across_its_diagonal_and_median_ct_value():
    """A 20 x 4 mm rectangle: its longest diameter is the diagonal, and its width across that
    diagonal twice its area over the diagonal; its median CT value, half of it 10 HU and half 50."""
    array = np.zeros((3, 12, 30))
    array[1, 2:6, 3:23] = 1  # 4 rows of 20 pixels of 1 mm
    ct = np.full(array.shape, -100.0)
    ct[1, 2:6, 3:13], ct[1, 2:6, 13:23] = 10.0, 50.0
    (lesion,) = lesion_table(volume(array, spacing=(1.0, 1.0, 2.0)), volume(ct, spacing=(1.0, 1.0, 2.0)))
    diagonal = math.hypot(20.0, 4.0)
    assert lesion.longest_axial_diameter_mm == pytest.approx(diagonal)
    assert lesion.perpendicular_diameter_mm == pytest.approx(2 * 20.0 * 4.0 / diagonal)
    assert lesion.median_hu == pytest.approx(30.0)


def test_tumour_burden_is_the_lesions_share_of_the_liver():
    array = np.zeros((4, 10, 10))
    array[1, 1:3, 1:3], array[2, 5:9, 5:9] = 1, 1  # 4 and 16 voxels of 1 mL
    lesions = lesion_table(volume(array, spacing=(10.0, 10.0, 10.0)))
    assert tumour_burden(lesions, 100.0) == pytest.approx(0.2)
    assert tumour_burden(lesions, 0.0) == 0.0 and tumour_burden([], 100.0) == 0.0


def test_single_pixel():
    array = np.zeros((3, 4, 5))
    array[1, 2, 3] = 1
    (lesion,) = lesion_table(volume(array, spacing=(0.7, 0.9, 2.5)))
    assert lesion.voxels == 1
    assert lesion.volume_ml == pytest.approx(0.7 * 0.9 * 2.5 / 1000)
    assert lesion.longest_axial_diameter_mm == pytest.approx(math.sqrt(0.7 ** 2 + 0.9 ** 2))
    assert (lesion.first_slice, lesion.last_slice, lesion.diameter_slice) == (1, 1, 1)


def test_band_at_an_angle():
    # A two-pixel-wide diagonal band: pixels (j, i) with i - j in {0, 1}, j = 0..9. The farthest
    # corners are the top-left of pixel (0, 0) and the bottom-right of pixel (9, 10):
    # 11 pixels across and 10 down.
    plane = np.zeros((12, 12), bool)
    for j in range(10):
        plane[j, j:j + 2] = True
    spacing_i, spacing_j = 0.5, 0.8
    expected = math.hypot(11 * spacing_i, 10 * spacing_j)
    assert axial_diameter(plane, spacing_i, spacing_j) == pytest.approx(expected)
    assert brute_force_diameter(plane, spacing_i, spacing_j) == pytest.approx(expected)
    (lesion,) = lesion_table(volume(plane[np.newaxis], spacing=(spacing_i, spacing_j, 3.0)))
    assert lesion.longest_axial_diameter_mm == pytest.approx(expected)


def test_rotated_rectangle_matches_brute_force():
    j, i = np.mgrid[0:40, 0:40]
    angle = math.radians(30)
    u = (i - 20) * math.cos(angle) + (j - 20) * math.sin(angle)
    v = -(i - 20) * math.sin(angle) + (j - 20) * math.cos(angle)
    plane = (np.abs(u) <= 12) & (np.abs(v) <= 4)
    assert axial_diameter(plane, 0.6, 0.8) == pytest.approx(brute_force_diameter(plane, 0.6, 0.8))


@pytest.mark.parametrize("seed", range(6))
def test_random_blobs_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    plane = rng.random((9, 11)) < 0.25
    plane[4, 5] = True
    spacing_i, spacing_j = rng.uniform(0.3, 2.0, 2)
    assert axial_diameter(plane, spacing_i, spacing_j) == pytest.approx(
        brute_force_diameter(plane, spacing_i, spacing_j))


def test_longest_diameter_is_taken_over_slices():
    array = np.zeros((3, 8, 8))
    array[0, 0:2, 0:2] = 1  # 2 x 2
    array[1, 1, 0:6] = 1  # a row of 6: the longest, 6 across and 1 down
    (lesion,) = lesion_table(volume(array, spacing=(1.0, 2.0, 1.0)))
    assert lesion.longest_axial_diameter_mm == pytest.approx(math.hypot(6.0, 2.0))
    assert lesion.diameter_slice == 1


def test_sorted_by_volume_numbered_from_one_and_26_connected():
    array = np.zeros((6, 10, 10))
    array[0, 0, 0] = 1  # small lesion first in the array order: two voxels touching at a corner
    array[1, 1, 1] = 1
    array[3:6, 5:8, 5:8] = 1  # 27 voxels
    rows = lesion_table(volume(array))
    assert [(r.number, r.voxels) for r in rows] == [(1, 27), (2, 2)]
    assert rows[1].centroid_lps == pytest.approx((0.5, 0.5, 0.5))


def test_empty_mask_has_no_lesions():
    assert lesion_table(volume(np.zeros((2, 3, 4)))) == []


def test_centroid_through_direction_and_origin():
    # Columns: i runs along +P, j along -L, k along +S.
    direction = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    array = np.zeros((4, 6, 8))
    array[2, 3, 4:6] = 1  # centroid (i, j, k) = (4.5, 3, 2)
    mask = volume(array, spacing=(0.5, 0.8, 2.0), origin=(10.0, -20.0, 30.0), direction=direction)
    (lesion,) = lesion_table(mask)
    # Scaled (2.25, 2.4, 4.0); through the direction: L = -2.4, P = 2.25, S = 4.0.
    assert lesion.centroid_lps == pytest.approx((7.6, -17.75, 34.0))
    assert lesion.centroid_ras == pytest.approx((-7.6, 17.75, 34.0))
    assert lesion.longest_axial_diameter_mm == pytest.approx(math.hypot(2 * 0.5, 0.8))


def test_large_lesion_is_fast():
    k, j, i = np.ogrid[0:80, 0:90, 0:90]
    ball = ((k - 40) / 34.0) ** 2 + ((j - 45) / 34.0) ** 2 + ((i - 45) / 34.0) ** 2 <= 1
    assert 160_000 <= ball.sum() <= 170_000
    start = time.perf_counter()
    (lesion,) = lesion_table(volume(ball, spacing=(0.7, 0.7, 1.0)))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"lesion_table took {elapsed:.2f} s"
    # The middle slice's diameter, through an independent hull of every pixel corner.
    plane = ball[40]
    jj, ii = np.nonzero(plane)
    corners = np.concatenate([np.column_stack([(ii + di) * 0.7, (jj + dj) * 0.7])
                              for di in (-0.5, 0.5) for dj in (-0.5, 0.5)])
    hull = corners[ConvexHull(corners).vertices]
    expected = np.sqrt(((hull[:, None] - hull[None]) ** 2).sum(-1)).max()
    assert lesion.longest_axial_diameter_mm == pytest.approx(expected)
    assert 0.95 * expected < lesion.perpendicular_diameter_mm <= expected  # a disc is as wide across


def test_long_axis_ends_are_the_diagonal_corners_in_patient_space():
    """A 20 x 4 pixel rectangle on plane k = 3 of a shifted, flipped grid: the long axis joins two
    opposite corners of it (pixel corners, half a voxel outside the centres), in LPS mm, and its
    length is the longest diameter."""
    array = np.zeros((6, 12, 30))
    array[3, 4:8, 5:25] = 1
    array[2, 5:7, 10:12] = 1  # a smaller part on the plane below: not where the diameter lies
    direction = np.diag([-1.0, 1.0, 1.0])
    (lesion,) = lesion_table(volume(array, spacing=(0.8, 0.5, 2.5), origin=(100.0, -50.0, 30.0),
                                    direction=direction))
    assert lesion.diameter_slice == 3
    ends = np.array(lesion.long_axis_lps)
    assert np.linalg.norm(ends[1] - ends[0]) == pytest.approx(lesion.longest_axial_diameter_mm)
    assert ends[:, 2] == pytest.approx([30.0 + 3 * 2.5] * 2)
    corners_i, corners_j = (4.5, 24.5), (3.5, 7.5)  # the rectangle's outer pixel corners, in voxels
    xs = sorted(100.0 - 0.8 * i for i in corners_i)  # x = origin - i * spacing (the flipped axis)
    ys = sorted(-50.0 + 0.5 * j for j in corners_j)
    assert sorted(ends[:, 0]) == pytest.approx(xs) and sorted(ends[:, 1]) == pytest.approx(ys)


def test_a_sagittal_or_flipped_grid_measures_the_same_axial_diameters():
    """The same two lesions on an axial grid (k superior), on one stored from head to feet (k
    flipped) and on a sagittal grid (slices along left-right): the same volumes, axial diameters,
    centroids and long axes; the slice numbers on each grid's own k axis."""
    rng = np.random.default_rng(4)
    axial = np.zeros((12, 30, 26), np.uint8)  # [k S, j P, i L]
    axial[3:9, 5:20, 4:12] = rng.random((6, 15, 8)) > 0.3  # ragged: its longest diameter is in one plane
    axial[6:8, 22:27, 15:24] = 1
    spacing = (0.7, 0.8, 2.5)
    reference = lesion_table(volume(axial, spacing=spacing))
    # k flipped: the first slice the most superior
    flipped = lesion_table(volume(axial[::-1], spacing=spacing, origin=(0.0, 0.0, 11 * 2.5),
                                  direction=np.diag([1.0, 1.0, -1.0])))
    # sagittal: i runs posterior (j of the axial), j inferior (k flipped), k left (i)
    sagittal_array = np.transpose(axial, (2, 0, 1))[:, ::-1, :]  # [k L, j I, i P]
    sagittal_direction = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # columns: i, j, k in LPS
    sagittal = lesion_table(volume(sagittal_array, spacing=(0.8, 2.5, 0.7), origin=(0.0, 0.0, 11 * 2.5),
                                   direction=sagittal_direction))
    assert len(reference) == len(flipped) == len(sagittal) == 2
    for ref, other in list(zip(reference, flipped)) + list(zip(reference, sagittal)):
        assert other.voxels == ref.voxels
        assert other.longest_axial_diameter_mm == pytest.approx(ref.longest_axial_diameter_mm)
        assert other.perpendicular_diameter_mm == pytest.approx(ref.perpendicular_diameter_mm)
        np.testing.assert_allclose(other.centroid_lps, ref.centroid_lps, atol=1e-9)
        ends, reference_ends = (sorted(map(tuple, np.round(lesion.long_axis_lps, 6))) for lesion in (other, ref))
        assert ends == reference_ends
    for ref, other in zip(reference, flipped):
        assert (other.first_slice, other.last_slice) == (11 - ref.last_slice, 11 - ref.first_slice)
        assert other.diameter_slice == 11 - ref.diameter_slice
    big = sagittal[0]
    assert (big.first_slice, big.last_slice) == (4, 11) and big.diameter_slice is None  # left-right extent


def test_an_oblique_grid_measures_the_diameter_in_the_axial_plane():
    """A lesion 20 mm across in the axial plane and 40 mm from head to feet, on a grid turned 30
    degrees about the front-back axis (an oblique reformat): the grid's planes cut it at a slant,
    22 mm across (and more with the pixels' corners). It is measured in the axial plane, on an axial
    grid holding it; its volume and slices stay the grid's own. Turned 8 degrees, on its own grid."""
    def turned_about_front_back(degrees: float) -> np.ndarray:
        a = math.radians(degrees)
        return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])

    for degrees, expected_slice in ((30.0, None), (8.0, int)):
        direction = turned_about_front_back(degrees)
        shape, spacing = (60, 60, 60), (0.5, 0.5, 1.0)
        origin = -direction @ (np.array(spacing) * (np.array(shape[::-1]) - 1) / 2)  # the grid's centre at 0
        grid = volume(np.zeros(shape, np.uint8), spacing=spacing, origin=tuple(origin), direction=direction)
        kji = np.indices(shape).reshape(3, -1).T
        x, y, z = grid.physical_points(kji[:, ::-1]).T
        inside = (x / 10.0) ** 2 + (y / 10.0) ** 2 + (z / 20.0) ** 2 <= 1.0  # semi-axes 10, 10, 20 mm
        lesion, = lesion_table(grid.with_array(inside.reshape(shape).astype(np.uint8)))
        assert lesion.voxels == int(inside.sum())
        assert lesion.volume_ml == pytest.approx(4 / 3 * math.pi * 10 * 10 * 20 / 1000, rel=0.03)
        assert (lesion.first_slice, lesion.last_slice) == tuple(int(v) for v in np.flatnonzero(
            inside.reshape(shape).any(axis=(1, 2)))[[0, -1]])
        if expected_slice is None:
            assert lesion.longest_axial_diameter_mm == pytest.approx(20.0, abs=1.0)
            assert lesion.perpendicular_diameter_mm == pytest.approx(20.0, abs=1.0)
            assert lesion.diameter_slice is None
            ends = np.array(lesion.long_axis_lps)
            assert abs(ends[0, 2] - ends[1, 2]) < 1e-6  # an axial line
        else:
            assert isinstance(lesion.diameter_slice, int)
            assert lesion.longest_axial_diameter_mm > 20.0
