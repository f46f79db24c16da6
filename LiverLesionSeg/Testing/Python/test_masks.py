"""Erosion and dilation by a ball, and connected-component labelling, the fast way: the same voxels
and labels as scipy's, on a real liver and on random shapes that touch the array's faces."""

import numpy as np
import pytest
from scipy import ndimage

from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.masks import array_sampling, ball, bounding_box, dilated, eroded, label_components


def random_shapes(shape=(24, 40, 36), seed=0) -> np.ndarray:
    """Smoothed noise thresholded: blobs with holes and necks, cut by the array's faces."""
    noise = np.random.default_rng(seed).normal(size=shape)
    return ndimage.gaussian_filter(noise, 2.0) > 0.02


STRUCTURES = {
    "2 mm ball, 0.7 x 0.7 x 2.5 mm voxels": ball((2.5, 0.7, 0.7), 2.0),
    "5 mm ball, 0.8 x 0.8 x 1.6 mm voxels": ball((1.6, 0.8, 0.8), 5.0),
    "3 mm ball, 1 mm voxels": ball((1.0, 1.0, 1.0), 3.0),
    "a cross (not a ball)": ndimage.generate_binary_structure(3, 1),
    "a 3 x 1 x 5 box": np.ones((3, 1, 5), bool),
    "a ring (no centre)": ndimage.generate_binary_structure(3, 1) ^ (np.arange(27).reshape(3, 3, 3) == 13),
}


@pytest.mark.parametrize("name", STRUCTURES)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_same_voxels_as_scipy_on_random_shapes(name, seed):
    structure, shapes = STRUCTURES[name], random_shapes(seed=seed)
    for border_value in (0, 1):
        expected = ndimage.binary_erosion(shapes, structure, border_value=border_value)
        assert np.array_equal(eroded(shapes, structure, border_value), expected), border_value
    assert np.array_equal(dilated(shapes, structure), ndimage.binary_dilation(shapes, structure))


def test_an_asymmetric_structure_is_reflected_as_scipy_reflects_it():
    structure = np.zeros((3, 3, 3), bool)
    structure[1, 1, 1:] = structure[2, 1, 1] = True
    shapes = random_shapes(seed=2)
    assert np.array_equal(eroded(shapes, structure), ndimage.binary_erosion(shapes, structure))
    assert np.array_equal(dilated(shapes, structure), ndimage.binary_dilation(shapes, structure))


def test_the_same_voxels_as_scipy_on_a_real_liver(data_dir):
    case = load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])
    liver = case.liver.array[bounding_box(case.liver.array > 0)] > 0
    structure = ball(array_sampling(case.ct.spacing), 2.0)
    assert structure.shape == (3, 5, 5)  # 1.6 mm slices, 0.74 mm pixels
    for border_value in (0, 1):
        result = eroded(liver, structure, border_value)
        assert np.array_equal(result, ndimage.binary_erosion(liver, structure, border_value=border_value))
        assert 0 < result.sum() < liver.sum()
    assert np.array_equal(dilated(liver, structure), ndimage.binary_dilation(liver, structure))


def test_a_structure_of_even_size_is_refused():
    with pytest.raises(ValueError, match="odd size"):
        eroded(random_shapes(), np.ones((2, 3, 3), bool))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_are_scipys_26_connected_labels_in_the_same_order(seed):
    # blobs with holes, and scattered voxels: many components, some joined by a corner only
    noise = np.random.default_rng(seed).random((30, 50, 44))
    shapes = (random_shapes(shape=(30, 50, 44), seed=seed) & (noise > 0.3)) | (noise > 0.97)
    assert ndimage.label(shapes, np.ones((3, 3, 3)))[1] > 100
    for mask in (shapes, shapes.astype(np.uint8) * np.uint8(7), shapes[:, ::2]):
        labels, count = label_components(mask)
        wanted, wanted_count = ndimage.label(mask, np.ones((3, 3, 3)))
        assert count == wanted_count and np.array_equal(labels, wanted)


def test_any_non_zero_value_is_foreground_and_neighbours_of_other_values_are_one_component():
    mask = np.zeros((3, 4, 4), np.uint8)
    mask[1, 1, 1], mask[1, 1, 2], mask[2, 2, 3] = 1, 2, 200  # three voxels, touching by a face and a corner
    labels, count = label_components(mask)
    assert count == 1 and np.count_nonzero(labels) == 3
