"""Several models' majority vote: the rule on small masks, and through `segment` and `evaluate`
with the bundled model and a copy of it that draws the liver and lesions otherwise."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.cli import main
from LiverLesionSegLib.ensemble import majority_vote, segment_with_models
from LiverLesionSegLib.infer import Segmentation
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.resources import bundled_model_path
from LiverLesionSegLib.volume import Volume

SPACING = (0.5, 0.5, 2.0)  # 0.5 mm³ a voxel


def _member(liver: np.ndarray, lesion: np.ndarray, probability: float, seconds: float) -> Segmentation:
    def volume(array):
        return Volume(array, SPACING, (10.0, -5.0, 3.0), np.diag([1.0, -1.0, 1.0]))

    return Segmentation(volume(liver.astype(np.uint8)), volume(lesion.astype(np.uint8)),
                        volume(np.full(liver.shape, probability, np.float32)), {"network": seconds})


def test_a_voxel_is_liver_or_lesion_where_most_members_say_so():
    shape = (4, 10, 10)
    livers = [np.zeros(shape, bool) for _ in range(3)]
    lesions = [np.zeros(shape, bool) for _ in range(3)]
    for liver in livers:
        liver[:, 2:8, 2:8] = True  # all three agree
    livers[0][:, 8, 2:8] = livers[1][:, 8, 2:8] = True  # two of three
    livers[2][:, 1, 2:8] = True  # one of three
    lesions[0][1:3, 3:6, 3:6] = lesions[1][1:3, 3:6, 3:6] = True  # 18 voxels, two of three
    lesions[2][1:3, 3:7, 3:7] = True
    lesions[0][0, 7, 7] = lesions[2][0, 7, 7] = True  # a two-vote speck of one voxel
    lesions[1][3, 6:8, 6:8] = True  # one vote

    voted = majority_vote([_member(a, b, p, 1.5) for a, b, p in zip(livers, lesions, (0.1, 0.2, 0.6))],
                          min_lesion_mm3=2.0)
    expected_liver = np.zeros(shape, bool)
    expected_liver[:, 2:9, 2:8] = True
    expected_lesion = np.zeros(shape, bool)
    expected_lesion[1:3, 3:6, 3:6] = True  # the speck (0.5 mm³) is under 2 mm³; it stays liver
    assert np.array_equal(voted.liver.array, expected_liver)
    assert np.array_equal(voted.lesion.array, expected_lesion)
    assert voted.liver.array.dtype == voted.lesion.array.dtype == np.uint8
    assert np.allclose(voted.lesion_probability.array, 0.3)
    assert voted.timings == {"network": 4.5}
    assert voted.liver.spacing == SPACING and voted.lesion.origin == (10.0, -5.0, 3.0)
    assert np.array_equal(voted.lesion_probability.direction, np.diag([1.0, -1.0, 1.0]))

    kept = majority_vote([_member(a, b, 0.5, 1.0) for a, b in zip(livers, lesions)])
    assert kept.lesion.array[0, 7, 7] == 1  # no size bound: the speck stays
    pair = majority_vote([_member(a, b, 0.5, 1.0) for a, b in zip(livers[:2], lesions[:2])])
    assert np.array_equal(pair.liver.array, livers[0] & livers[1])  # of two, both must agree
    with pytest.raises(ValueError):
        majority_vote([])


def test_segment_and_evaluate_with_three_models_give_the_majoritys_result(data_dir, other_model, tmp_path, capsys):
    case = data_dir / "tace" / "RadCTTACEomics_0697"
    volume = read_input_volume(case)
    bundled, other = load_checkpoint(bundled_model_path()), load_checkpoint(other_model)
    alone = segment_with_models(volume, [bundled])
    different = segment_with_models(volume, [other])
    assert alone.lesion.array.sum() > different.lesion.array.sum() > 0
    assert not np.array_equal(alone.liver.array, different.liver.array)

    out = tmp_path / "vote.nii.gz"
    code = main(["segment", str(case), "-o", str(out), "--model", str(other_model), "--model",
                 str(bundled_model_path()), "--model", str(bundled_model_path()), "--probabilities",
                 str(tmp_path / "p.nrrd"), "--progress", "none"])
    assert code == 0, capsys.readouterr().err
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), alone.label_map())
    mean = (2 * alone.lesion_probability.array + different.lesion_probability.array) / 3
    assert np.allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "p.nrrd"))), mean, atol=1e-6)

    two_others = segment_with_models(volume, [other, bundled, other])
    assert np.array_equal(two_others.label_map(), different.label_map())

    report = tmp_path / "report"
    code = main(["evaluate", str(case), "--out", str(report), "--model", str(other_model), "--model",
                 str(other_model), "--model", str(bundled_model_path()), "--progress", "none"])
    assert code == 0, capsys.readouterr().err
    written = json.loads((report / "metrics.json").read_text())
    assert written["config"]["majority_vote_of"] == [str(other_model)] * 2 + [str(bundled_model_path())]
    assert list(written["cautions"]) == ["RadCTTACEomics_0697"]  # its 5 mm slices
    assert len(written["cautions"]["RadCTTACEomics_0697"]) == 1
    assert written["cautions"]["RadCTTACEomics_0697"][0].startswith("the slices are 5.0 mm apart")
    assert written["cases"][0]["pred_lesion_volume_ml"] == pytest.approx(
        float(different.lesion.array.sum()) * volume.voxel_volume_mm3 / 1000.0, rel=1e-6)
