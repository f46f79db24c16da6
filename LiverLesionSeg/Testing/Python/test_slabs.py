"""Whole-volume operations slab by slab on several cores: the same voxels as on the whole volume, for
the erosions, dilations and in-slice smoothing of the clean-up."""

import numpy as np
import pytest
from scipy import ndimage

from LiverLesionSegLib import slabs
from LiverLesionSegLib.masks import ball, dilated, eroded
from LiverLesionSegLib.postprocess import liver_density
from LiverLesionSegLib.slabs import by_slabs


@pytest.fixture
def three_slabs(monkeypatch):
    """Every volume cut into three slabs, however small."""
    monkeypatch.setattr(slabs, "MIN_SLAB_VOXELS", 1)
    monkeypatch.setattr(slabs, "worker_count", lambda: 3)


def blobs(shape=(31, 40, 36), seed=0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=shape)
    return ndimage.gaussian_filter(noise, 2.0) > 0.02


def shifted_down(array: np.ndarray, slices: int) -> np.ndarray:
    """Each slice takes the value `slices` slices above it (an operation that reaches that far)."""
    return np.concatenate([array[:slices], array[:-slices]]) if slices else array.copy()


@pytest.mark.parametrize("reach", [1, 2, 4])
def test_slabs_give_the_whole_volumes_result_when_they_reach_as_far_as_the_operation(three_slabs, reach):
    array = np.arange(30 * 4 * 5).reshape(30, 4, 5)
    whole = shifted_down(array, reach)
    assert np.array_equal(by_slabs(lambda a: shifted_down(a, reach), array, reach, workers=3), whole)
    # slabs that reach less than the operation give another result: the comparison above can fail
    assert not np.array_equal(by_slabs(lambda a: shifted_down(a, reach), array, reach - 1, workers=3), whole)


def test_slabs_are_used_only_for_large_volumes_and_several_cores(monkeypatch):
    calls = []

    def counted(part):
        calls.append(len(part))
        return part
    monkeypatch.setattr(slabs, "MIN_SLAB_VOXELS", 100)
    by_slabs(counted, np.zeros((30, 4, 5)), 1, workers=1)
    by_slabs(counted, np.zeros((30, 2, 1)), 1, workers=4)  # 60 voxels
    by_slabs(counted, np.zeros((30, 4, 5)), 1, workers=2)
    assert calls[:2] == [30, 30] and sorted(calls[2:]) == [16, 16]  # two slabs of 15 and one slice beyond


@pytest.mark.parametrize("border_value", [0, 1])
@pytest.mark.parametrize("structure", [ball((2.5, 0.7, 0.7), 2.0), ball((0.625, 0.8, 0.8), 2.0)],
                         ids=["2 mm ball, 2.5 mm slices", "2 mm ball, 0.625 mm slices"])
def test_erosion_and_dilation_by_slabs_are_scipys(three_slabs, structure, border_value):
    for seed in (0, 1):
        shapes = blobs(seed=seed)
        assert np.array_equal(eroded(shapes, structure, border_value),
                              ndimage.binary_erosion(shapes, structure, border_value=border_value))
        assert np.array_equal(dilated(shapes, structure), ndimage.binary_dilation(shapes, structure))


def test_the_liver_density_by_slabs_is_the_whole_volumes(three_slabs, monkeypatch):
    rng = np.random.default_rng(2)
    ct = rng.normal(60, 30, size=(20, 48, 40)).astype(np.float32)
    parenchyma = blobs((20, 48, 40), seed=3)
    by_parts = liver_density(ct, parenchyma, (0.8, 0.8, 2.5))
    monkeypatch.setattr(slabs, "worker_count", lambda: 1)
    assert by_parts.any() and np.array_equal(by_parts, liver_density(ct, parenchyma, (0.8, 0.8, 2.5)))
