"""The slice-spacing benchmark's re-slicing: thicker slices are whole groups averaged, thinner ones
interpolated, the masks follow, and the grid stays where the patient is."""

import sys
from pathlib import Path

import numpy as np
import pytest

from LiverLesionSegLib.volume import Case, Volume

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import slice_spacing  # noqa: E402


def _case(slices: int = 10) -> Case:
    ct = np.repeat((np.arange(slices) * 10.0)[:, None, None], 3, axis=1).repeat(3, axis=2).astype(np.int16)
    direction = np.diag([1.0, 1.0, -1.0])  # slices stacked downwards, as DICOM series often are
    volume = Volume(ct, (0.8, 0.8, 2.0), (5.0, 6.0, 100.0), direction)
    liver = np.zeros(ct.shape, np.uint8)
    liver[2:7] = 1
    lesion = np.zeros(ct.shape, np.uint8)
    lesion[4:6] = 1
    return Case("phantom", volume, volume.with_array(liver), volume.with_array(lesion))


def _centres(volume: Volume) -> np.ndarray:
    """Every slice's centre along the patient's axis the slices are stacked on."""
    return volume.origin[2] + volume.direction[2, 2] * volume.spacing[2] * np.arange(volume.shape[0])


def test_thicker_slices_average_whole_groups_and_sit_at_their_centres():
    case = _case(10)
    thick = slice_spacing.resliced(case, 3)
    assert thick.ct.shape[0] == 3 and thick.ct.spacing == (0.8, 0.8, 6.0)
    assert thick.ct.array[:, 0, 0].tolist() == [10.0, 40.0, 70.0]
    assert np.allclose(_centres(thick.ct), _centres(case.ct)[[1, 4, 7]])
    # A voxel is inside when at least half of it was: liver 2-6 -> groups 0-2 (1/3), 3-5 (3/3), 6-8 (1/3).
    assert thick.liver.array[:, 0, 0].tolist() == [0, 1, 0]
    assert thick.lesion.array[:, 0, 0].tolist() == [0, 1, 0]


def test_thinner_slices_are_interpolated_between_the_old_ones():
    case = _case(10)
    thin = slice_spacing.resliced(case, 0.5)
    assert thin.ct.shape[0] == 19 and thin.ct.spacing == (0.8, 0.8, 1.0)
    assert np.allclose(thin.ct.array[:, 0, 0], np.arange(19) * 5.0)
    assert np.allclose(_centres(thin.ct), np.linspace(_centres(case.ct)[0], _centres(case.ct)[-1], 19))
    assert thin.liver.array[:, 0, 0].nonzero()[0].tolist() == list(range(3, 14))  # half-way voxels count in
    assert slice_spacing.resliced(case, 1) is case


def test_a_thicker_factor_must_be_whole_slices():
    with pytest.raises(SystemExit, match="whole number"):
        slice_spacing.resliced(_case(), 2.5)


def test_a_fold_without_a_model_is_refused_with_what_to_run_first(tmp_path):
    from LiverLesionSegLib.errors import InputError
    from LiverLesionSegLib.recipes import bundled

    with pytest.raises(InputError, match="holds no fold model") as refused:
        slice_spacing.fold_model(tmp_path / "test-3Dircadb1.1", bundled())
    assert "benchmarks/accuracy.py" in refused.value.hint
