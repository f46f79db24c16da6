"""A CT of pixels longer one way than the other (a coronal series, 3 mm between its planes) is
segmented on square pixels and its results brought back onto its own grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.infer import segment_volume
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.resources import bundled_model_path, sample_case_path
from LiverLesionSegLib.square_pixels import back_on_grid, on_square_pixels
from LiverLesionSegLib.volume import Volume


def test_square_pixels_are_left_alone_and_long_ones_made_square_in_place():
    ramp = np.tile(np.arange(8, dtype=np.float32)[:, None] * 3.0, (2, 1, 5))  # 8 rows, 3 HU a row
    assert on_square_pixels(Volume(ramp, (3.0, 3.1, 5.0), (0, 0, 0), np.eye(3), "square")) is None
    long = Volume(ramp, (1.0, 3.0, 5.0), (10.0, 20.0, 30.0), np.eye(3), "long")  # rows 3 mm apart: 1 HU a mm
    square = on_square_pixels(long)
    assert square.shape == (2, 24, 5) and square.spacing == pytest.approx((1.0, 1.0, 5.0))
    # the same extent: the first pixel's edge at the old first pixel's edge (20 - 1.5 mm along j)
    assert square.origin == pytest.approx((10.0, 19.0, 30.0))
    # a ramp along j stays the same ramp at the new pixels' centres (inside, away from the edges)
    centres_mm = square.physical_points(np.column_stack([np.zeros(24), np.arange(24), np.zeros(24)]))[:, 1] - 20.0
    np.testing.assert_allclose(square.array[0, 3:21, 0], centres_mm[3:21], atol=1e-4)


def test_masks_brought_back_keep_what_covers_half_a_pixel():
    fine = np.zeros((1, 12, 4), np.uint8)
    fine[0, 3:9] = 1  # old rows 1 and 2 of 4 (three fine rows each)
    back = back_on_grid(fine, (4, 4), mask=True)
    assert back.dtype == np.uint8 and back[0, :, 0].tolist() == [0, 1, 1, 0]
    probability = back_on_grid(fine.astype(np.float32) * 0.5, (4, 4), mask=False)
    assert probability[0, :, 0].tolist() == pytest.approx([0.0, 0.5, 0.5, 0.0])


def _coronal_series(ct: Volume, plane_mm: float) -> Volume:
    """`ct` as a coronal series of planes `plane_mm` apart: resampled along the body's front-back axis,
    stored plane by plane (rows running from head to feet)."""
    image = ct.to_sitk()
    size = list(image.GetSize())
    size[1] = int(size[1] * ct.spacing[1] / plane_mm)
    spacing = (ct.spacing[0], plane_mm, ct.spacing[2])
    image = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), spacing,
                          image.GetDirection(), -1024.0, image.GetPixelID())
    axial = Volume.from_sitk(image, "coronal")
    planes = np.ascontiguousarray(axial.array.transpose(1, 0, 2)[:, ::-1])  # [y, -z, x]
    top = axial.physical_points([[0, 0, axial.shape[0] - 1]])[0]
    direction = np.column_stack([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).astype(float)
    return Volume(planes, (spacing[0], spacing[2], spacing[1]), tuple(top), direction, "coronal")


def test_a_coronal_series_is_segmented_as_its_axial_original(sample_segmentation):
    """The sample CT as a coronal series of 3 mm planes: before, its slices were squeezed (liver Dice
    0.62 on 3Dircadb1.17 so made); its liver and lesions now agree with the axial original's."""
    ct, original = sample_segmentation
    coronal = _coronal_series(ct, 3.0)
    result = segment_volume(coronal, load_checkpoint(bundled_model_path()))
    labels = original.liver.array + original.lesion.array
    on_coronal = sitk.Resample(ct.with_array(labels).to_sitk(), coronal.to_sitk(), sitk.Transform(),
                               sitk.sitkNearestNeighbor, 0)
    expected = sitk.GetArrayFromImage(on_coronal)

    def dice(a, b):
        return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))

    assert dice(result.liver.array > 0, expected > 0) > 0.93
    assert dice(result.lesion.array > 0, expected == 2) > 0.6
    assert result.liver.same_grid(coronal) and result.lesion_probability.same_grid(coronal)


def test_a_training_case_of_long_pixels_is_learned_from_on_square_ones():
    """A labelled coronal series: its slices and masks reach the network as the axial original's do
    (squeezed before), its masks on the square grid (the lesion inside the liver still)."""
    from LiverLesionSegLib.config import PreprocessConfig
    from LiverLesionSegLib.dataset import prepare_case
    from LiverLesionSegLib.volume import Case

    ct = read_input_volume(sample_case_path())
    liver = np.zeros(ct.shape, np.uint8)
    liver[20:40, 200:330, 150:300] = 1
    lesion = np.zeros(ct.shape, np.uint8)
    lesion[25:35, 240:280, 200:240] = 1
    coronal = _coronal_series(ct, 3.0)
    as_coronal = [sitk.GetArrayFromImage(sitk.Resample(ct.with_array(m).to_sitk(), coronal.to_sitk(), sitk.Transform(),
                                                       sitk.sitkNearestNeighbor, 0)) for m in (liver, lesion)]
    config = PreprocessConfig(zoom=True)
    case = Case("coronal", coronal, coronal.with_array(as_coronal[0]), coronal.with_array(as_coronal[1]))
    prepared = prepare_case(case, config, keep_volume=True)
    original = prepare_case(Case("axial", ct, ct.with_array(liver), ct.with_array(lesion)), config)
    assert prepared.ct.spacing[0] == pytest.approx(prepared.ct.spacing[1], rel=0.05)
    assert prepared.liver.shape == prepared.ct.shape and not (prepared.lesion & ~prepared.liver).any()
    # the liver box's view: the liver fills it as in the axial original (a box square in long pixels
    # would reach four times as far front to back, the liver a sliver in it)
    share = [view.targets[:, 0].mean() / 255 for view in (prepared.views[1], original.views[1])]
    assert share[0] == pytest.approx(share[1], rel=0.15)


def test_square_pixels_that_would_not_fit_in_memory_are_refused_before_they_are_made(monkeypatch):
    """Pixels 0.05 by 50 mm (the widest the readers let through) of a 512-pixel slice would make
    512 000 rows: told as memory it needs, not numpy's error or a MemoryError mid-run."""
    from LiverLesionSegLib import memory
    from LiverLesionSegLib.errors import ResourceError

    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**20)
    ct = Volume(np.zeros((2, 512, 512), np.int16), (0.05, 50.0, 5.0), (0, 0, 0), np.eye(3), "long.nii.gz")
    with pytest.raises(ResourceError) as exc:
        on_square_pixels(ct)
    assert "resampling the CT onto square pixels of 512 x 512000 x 2 voxels needs about" in str(exc.value)
    assert "long.nii.gz" in str(exc.value)
