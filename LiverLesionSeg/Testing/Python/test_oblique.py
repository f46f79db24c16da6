"""A CT whose voxel axes are turned away from the patient's (an oblique reformat) is segmented on an
axial grid holding it, and its results brought back onto its own grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LiverLesionSegLib.oblique import degrees_off_axes, on_axial_grid, onto_grid
from LiverLesionSegLib.volume import Volume


def _about_left_right(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def turned(ct: Volume, degrees: float) -> Volume:
    """`ct` resampled onto its own grid turned `degrees` about the left-right axis through its centre
    (what lies outside `ct` is air)."""
    direction = _about_left_right(degrees) @ ct.direction
    centre = ct.physical_points([[(n - 1) / 2 for n in ct.shape[::-1]]])[0]
    origin = centre - direction @ (np.array(ct.spacing) * (np.array(ct.shape[::-1]) - 1) / 2)
    image = sitk.Resample(ct.to_sitk(), list(ct.shape[::-1]), sitk.Transform(), sitk.sitkLinear, origin.tolist(),
                          ct.spacing, direction.ravel().tolist(), -1024.0, sitk.sitkInt16)
    return Volume.from_sitk(image, "turned")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_the_angle_off_the_axes_is_the_largest_axis_turn():
    assert degrees_off_axes(np.eye(3)) == pytest.approx(0.0, abs=1e-6)
    assert degrees_off_axes(_about_left_right(30.0)) == pytest.approx(30.0)
    assert degrees_off_axes(_about_left_right(-12.0) @ np.diag([1.0, 1.0, 1.0])) == pytest.approx(12.0)


def test_a_slightly_turned_ct_is_left_on_its_grid_and_a_turned_one_put_on_an_axial_grid_holding_it():
    z = np.arange(20, dtype=np.float32)[:, None, None] * np.ones((1, 16, 24), np.float32)
    assert on_axial_grid(Volume(z, (1.0, 1.0, 2.0), (0, 0, 0), _about_left_right(8.0), "slight")) is None
    ct = Volume(z, (0.8, 1.0, 2.0), (5.0, -3.0, 40.0), _about_left_right(30.0), "turned")
    ramp = ct.physical_points(np.array([[i, j, k] for k in range(20) for j in range(16) for i in range(24)]))[:, 2]
    ct = ct.with_array(ramp.reshape(ct.shape).astype(np.float32))  # each voxel holds its height in mm
    axial = on_axial_grid(ct)
    assert np.allclose(axial.direction, np.eye(3)) and axial.spacing == pytest.approx((0.8, 0.8, 2.0))
    corners = ct.physical_points([[0, 0, 0], [23, 15, 19], [0, 15, 0], [23, 0, 19]])
    far = axial.physical_points([[n - 1 for n in axial.shape[::-1]]])[0]
    assert np.all(corners.min(axis=0) >= np.array(axial.origin) - 1e-6)
    assert np.all(corners.max(axis=0) <= far + np.array(axial.spacing))
    # inside the turned CT (away from its outer voxels, where values are held, not interpolated), a voxel
    # of the axial grid holds its own height; outside, the CT's lowest value
    core = np.zeros(ct.shape, np.float32)
    core[1:-1, 1:-1, 1:-1] = 1
    inside = onto_grid(core, ct, axial, mask=False) > 0.999
    assert inside.sum() > 1000
    heights = axial.physical_points(np.argwhere(inside)[:, ::-1])[:, 2]
    np.testing.assert_allclose(axial.array[inside], heights, atol=1e-3)
    assert np.all(axial.array[~inside & (onto_grid(np.ones(ct.shape), ct, axial, mask=False) == 0)] == ramp.min())


def test_a_mask_taken_to_the_axial_grid_and_back_is_the_same_mask():
    ct = Volume(np.zeros((30, 40, 40), np.int16), (0.8, 0.8, 2.0), (0, 0, 0), _about_left_right(25.0), "turned")
    mask = np.zeros(ct.shape, np.uint8)
    mask[8:22, 10:30, 12:28] = 1
    axial = on_axial_grid(ct)
    there = onto_grid(mask, ct, axial, mask=True)
    back = onto_grid(there, axial, ct, mask=True)
    assert there.dtype == back.dtype == np.uint8
    assert _dice(back > 0, mask > 0) > 0.95
    assert there.sum() * axial.voxel_volume_mm3 == pytest.approx(mask.sum() * ct.voxel_volume_mm3, rel=0.05)


def test_a_ct_turned_30_degrees_is_segmented_as_its_upright_original(sample_segmentation):
    """The sample CT turned 30 degrees about the left-right axis: before, its lesion was missed (lesion
    Dice 0.0 against the upright original's segmentation; 3Dircadb1.17 so turned: 0.66 against 0.87)."""
    from LiverLesionSegLib.infer import segment_volume
    from LiverLesionSegLib.resources import load_model

    ct, original = sample_segmentation
    oblique = turned(ct, 30.0)
    result = segment_volume(oblique, load_model(None))
    labels = ct.with_array(original.liver.array + original.lesion.array).to_sitk()
    expected = sitk.GetArrayFromImage(sitk.Resample(labels, oblique.to_sitk(), sitk.Transform(),
                                                    sitk.sitkNearestNeighbor, 0))
    inside = onto_grid(np.ones(ct.shape, np.uint8), ct, oblique, mask=True) > 0  # what the turned grid holds of the CT
    assert _dice(result.liver.array[inside] > 0, expected[inside] > 0) > 0.93
    assert _dice(result.lesion.array[inside] > 0, expected[inside] == 2) > 0.75
    assert result.liver.same_grid(oblique) and result.lesion_probability.same_grid(oblique)
    assert not (result.lesion.array & ~result.liver.array).any()


def test_a_turned_training_case_is_learned_from_on_the_axial_grid():
    from LiverLesionSegLib.config import PreprocessConfig
    from LiverLesionSegLib.dataset import prepare_case
    from LiverLesionSegLib.volume import Case

    ct = Volume(np.full((24, 64, 64), -100, np.int16), (0.8, 0.8, 2.5), (0, 0, 0), _about_left_right(30.0), "turned")
    liver = np.zeros(ct.shape, np.uint8)
    liver[4:20, 16:48, 16:48] = 1
    lesion = np.zeros(ct.shape, np.uint8)
    lesion[10:14, 28:36, 28:36] = 1
    prepared = prepare_case(Case("turned", ct, ct.with_array(liver), ct.with_array(lesion)), PreprocessConfig(),
                            keep_volume=True)
    assert np.allclose(prepared.ct.direction, np.eye(3))
    assert prepared.liver.shape == prepared.ct.shape and not (prepared.lesion & ~prepared.liver).any()
    volumes = [m.sum() * v.voxel_volume_mm3 for m, v in ((liver, ct), (prepared.liver, prepared.ct))]
    assert volumes[1] == pytest.approx(volumes[0], rel=0.05)


def test_an_axial_grid_that_would_not_fit_in_memory_is_refused_before_it_is_made(monkeypatch):
    from LiverLesionSegLib import memory
    from LiverLesionSegLib.errors import ResourceError

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 * 2**20)
    turned = Volume(np.zeros((40, 256, 256), np.int16), (0.8, 0.8, 2.5), (0, 0, 0), _about_left_right(30),
                    "turned.nrrd")
    with pytest.raises(ResourceError) as exc:
        on_axial_grid(turned)
    assert "resampling the CT onto an axial grid of" in str(exc.value) and "turned.nrrd" in str(exc.value)
