"""Contours filled on pixels (`io.polygon`): a pixel is in when its centre lies inside the contour or
on it, whichever convention drew the contour; checked against matplotlib's point-in-polygon test on
random polygons and on masks traced by contourpy (marching squares) and by OpenCV."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as PolygonPath

from LiverLesionSegLib.io.polygon import fill_polygon

SHAPE = (40, 48)


def box(rows: slice, columns: slice) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[rows, columns] = True
    return mask


def test_a_contour_through_the_boundary_pixels_centres_holds_them():
    xy = np.array([(5, 5), (15, 5), (15, 12), (5, 12)], float)  # columns 5-15, rows 5-12, as OpenCV traces them
    np.testing.assert_array_equal(fill_polygon(xy, SHAPE), box(slice(5, 13), slice(5, 16)))


def test_a_contour_along_the_pixels_edges_holds_no_more_than_them():
    xy = np.array([(4.5, 4.5), (15.5, 4.5), (15.5, 12.5), (4.5, 12.5)])  # Pillow adds row 4 and column 4
    np.testing.assert_array_equal(fill_polygon(xy, SHAPE), box(slice(5, 13), slice(5, 16)))


def test_one_pixel_traced_by_marching_squares():
    xy = np.array([(7.5, 3.0), (7.0, 3.5), (6.5, 3.0), (7.0, 2.5)])  # a diamond through its edges' middles
    np.testing.assert_array_equal(fill_polygon(xy, SHAPE), box(slice(3, 4), slice(7, 8)))


def test_a_contour_beyond_the_image_is_cut_at_its_edge():
    xy = np.array([(-0.5, -0.5), (60.5, -0.5), (60.5, 2.5), (-0.5, 2.5)])
    np.testing.assert_array_equal(fill_polygon(xy, SHAPE), box(slice(0, 3), slice(0, SHAPE[1])))


def distance_to_contour(points: np.ndarray, xy: np.ndarray) -> np.ndarray:
    a, b = xy, np.roll(xy, -1, axis=0)
    ab = b - a
    t = np.clip(((points[:, None, :] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    nearest = a + t[..., None] * ab
    return np.linalg.norm(points[:, None, :] - nearest, axis=-1).min(axis=1)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 2 * np.pi), st.floats(2, 18)), min_size=3, max_size=14),
       st.floats(10, 30), st.floats(10, 25))
def test_random_star_polygons_match_matplotlib(vertices, cx, cy):
    """Away from the contour (where rounding cannot matter) exactly matplotlib's inside test."""
    vertices = sorted(set(vertices))
    if len({angle for angle, _ in vertices}) < 3:
        return
    xy = np.array([(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in vertices])
    js, is_ = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    centres = np.column_stack([is_.ravel(), js.ravel()]).astype(float)
    inside = PolygonPath(xy).contains_points(centres).reshape(SHAPE)
    clear = (distance_to_contour(centres, xy) > 1e-2).reshape(SHAPE)
    ours = fill_polygon(xy, SHAPE)
    np.testing.assert_array_equal(ours[clear], inside[clear])


def random_blobs(seed: int) -> np.ndarray:
    from scipy import ndimage

    noise = np.random.default_rng(seed).normal(size=SHAPE)
    mask = ndimage.gaussian_filter(noise, 2.5) > 0.05
    mask[[0, -1]], mask[:, [0, -1]] = False, False  # closed contours only
    return mask


@pytest.mark.parametrize("seed", range(8))
def test_masks_traced_by_marching_squares_come_back_exactly(seed):
    """Holes, islands and pixels touching at a corner included: each contour at half the way
    between the pixels in and out, filled and combined by even-odd, gives the mask back."""
    import contourpy

    mask = random_blobs(seed)
    lines = contourpy.contour_generator(z=mask.astype(float), line_type="Separate").lines(0.5)
    assert len(lines) >= 3
    filled = np.zeros(SHAPE, bool)
    for line in lines:
        filled ^= fill_polygon(line[:-1] if np.allclose(line[0], line[-1]) else line, SHAPE)
    np.testing.assert_array_equal(filled, mask)


@pytest.mark.parametrize("seed", range(4))
def test_outer_contours_traced_by_opencv_come_back_exactly(seed):
    cv2 = pytest.importorskip("cv2", reason="OpenCV traces the contours (setup.sh installs it for rt-utils)")
    from scipy import ndimage

    mask = ndimage.binary_fill_holes(random_blobs(seed))
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(SHAPE, bool)
    for contour in contours:
        points = contour[:, 0, :].astype(float)
        filled |= fill_polygon(points, SHAPE) if len(points) >= 3 else False
        for i, j in points.astype(int):  # one- and two-pixel regions trace to fewer than three points
            filled[j, i] = True
    np.testing.assert_array_equal(filled, mask)
