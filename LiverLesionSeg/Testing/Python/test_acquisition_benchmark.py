"""The acquisition benchmark's changes to a CT: each is what its kind of scan does (noise of the
asked size, a shift or an enhancement of the right voxels, other pixels over the same patient),
and its figures come out (the run on the shared cases is in benchmarks/results/acquisition)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import bad_inputs
from LiverLesionSegLib.volume import Volume

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import acquisition  # noqa: E402


def _phantom() -> Volume:
    array = np.full((3, 40, 40), -1000, np.int16)  # air
    array[:, 8:32, 8:32] = 60  # soft tissue
    array[:, 18:22, 18:22] = 700  # bone
    return Volume(array, (0.7, 0.8, 2.5), (10.0, -20.0, 30.0), np.diag([1.0, -1.0, 1.0]))


def test_noise_has_the_asked_size_and_is_the_same_draw_each_run():
    ct = _phantom()
    noisy = acquisition.noise(30.0)(ct)
    added = noisy.array - ct.array
    assert added.std() == pytest.approx(30.0, rel=1e-3) and abs(added.mean()) < 1.0
    assert np.array_equal(noisy.array, acquisition.noise(30.0)(ct).array)
    # correlated in the slice (as CT noise is), not between slices
    assert np.corrcoef(added[:, :, :-1].ravel(), added[:, :, 1:].ravel())[0, 1] > 0.3
    assert abs(np.corrcoef(added[:-1].ravel(), added[1:].ravel())[0, 1]) < 0.1


def test_calibration_shifts_everything_and_enhancement_only_soft_tissue():
    ct = _phantom()
    assert np.array_equal(acquisition.shifted(20.0)(ct).array, ct.array + 20.0)
    brighter = acquisition.enhanced(0.2)(ct).array
    assert brighter[0, 10, 10] == pytest.approx(72.0)  # 60 HU * 1.2
    assert brighter[0, 0, 0] == -1000 and brighter[0, 20, 20] == 700  # air and bone as they were


def test_other_pixels_cover_the_same_patient():
    ct = _phantom()
    for factor in (0.75, 4 / 3):
        image, mask = acquisition.pixels(factor, 1)(ct), acquisition.pixels(factor, 0)(ct.with_array(
            (ct.array > 0).astype(np.uint8)))
        assert image.spacing == mask.spacing and image.shape == mask.shape
        assert image.spacing[0] * image.shape[2] == pytest.approx(ct.spacing[0] * ct.shape[2])  # the same extent
        assert image.spacing[2] == ct.spacing[2] and image.shape[0] == ct.shape[0]
        # the image's first and last pixel edges lie where the original's do
        for volume in (ct, image):
            assert volume.physical_points(np.array([[-0.5, -0.5, 0]]))[0] == pytest.approx(
                ct.physical_points(np.array([[-0.5, -0.5, 0]]))[0])
        # the tissue square keeps its area in mm² (to a pixel's rim)
        area = float((mask.array[0] > 0).sum()) * mask.spacing[0] * mask.spacing[1]
        assert area == pytest.approx(24 * 24 * 0.7 * 0.8, rel=0.1)


def test_a_body_cut_by_the_field_of_view_keeps_the_centre_where_it_was():
    ct = _phantom()
    cut = acquisition.cut(0.5)(ct)
    assert cut.shape == (3, 20, 20) and cut.spacing == ct.spacing
    # the kept voxels lie where they lay: voxel (0, 0, 0) of the cut is voxel (10, 10, 0) of the CT
    first = cut.physical_points(np.array([[0, 0, 0]]))[0]
    assert first == pytest.approx(ct.physical_points(np.array([[10, 10, 0]]))[0])
    assert np.array_equal(cut.array, ct.array[:, 10:30, 10:30])
    targeted = acquisition.targeted(0.5, 1)(ct)
    assert targeted.shape == (3, 40, 40) and targeted.spacing[0] == pytest.approx(ct.spacing[0] / 2)


def test_a_fatty_liver_darkens_the_parenchyma_not_its_lesions():
    from LiverLesionSegLib.volume import Case

    ct = _phantom()
    liver = np.zeros(ct.shape, np.uint8)
    liver[:, 8:32, 8:32] = 1
    lesion = np.zeros(ct.shape, np.uint8)
    lesion[:, 10:14, 10:14] = 1
    case = Case("phantom", ct, ct.with_array(liver), ct.with_array(lesion))
    fatty = acquisition.fatty(30.0)(case).array
    assert fatty[0, 25, 25] == 60 - 30 and fatty[0, 20, 20] == 700 - 30  # parenchyma (and what lies in it)
    assert fatty[0, 11, 11] == 60 and fatty[0, 14, 12] == 60  # the lesion, and a voxel around it
    assert fatty[0, 0, 0] == -1000  # outside the liver


def test_the_benchmark_prints_and_writes_its_table(data_dir, tmp_path, model_path, capsys, monkeypatch):
    bad_inputs.small_case(data_dir, tmp_path / "data" / "eight")
    monkeypatch.setattr(acquisition, "CHANGES", [acquisition.CHANGES[0], acquisition.CHANGES[2],
                                                 acquisition.CHANGES[-1]])
    monkeypatch.setattr(sys, "argv", ["acquisition.py", "--data", str(tmp_path / "data"), "--model", str(model_path),
                                      "--out", str(tmp_path / "out")])
    assert acquisition.main() == 0
    rows = json.loads((tmp_path / "out" / "acquisition.json").read_text())
    assert [row["change"] for row in rows] == [change.name for change in acquisition.CHANGES]
    assert rows[0]["liver_dice"] > 0.8 and "liver_dice_to_unchanged" not in rows[0]
    assert all(0.5 < row["liver_dice_to_unchanged"] <= 1.0 for row in rows[1:])
    table = (tmp_path / "out" / "acquisition.md").read_text()
    assert table in capsys.readouterr().out and "| noise 30 HU (low dose) |" in table


def test_fold_models_measure_only_their_own_case_and_the_changes_asked(data_dir, tmp_path, model_path, monkeypatch):
    """--models-per-case: each case by the model that did not train on it, a case without one left
    out; --only: as scanned and the changes whose name holds the text."""
    import shutil

    bad_inputs.small_case(data_dir, tmp_path / "data" / "eight")
    bad_inputs.small_case(data_dir, tmp_path / "data" / "nine")
    (tmp_path / "folds" / "test-eight").mkdir(parents=True)
    shutil.copy(model_path, tmp_path / "folds" / "test-eight" / "model.safetensors")
    monkeypatch.setattr(sys, "argv", ["acquisition.py", "--data", str(tmp_path / "data"), "--models-per-case",
                                      str(tmp_path / "folds"), "--only", "noise 30", "--out", str(tmp_path / "out")])
    assert acquisition.main() == 0
    rows = json.loads((tmp_path / "out" / "acquisition.json").read_text())
    assert [(row["case"], row["change"]) for row in rows] == [("eight", "as scanned"),
                                                             ("eight", "noise 30 HU (low dose)")]
