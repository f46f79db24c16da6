"""Evaluation measures against numbers worked out by hand, and against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from LiverLesionSegLib.errors import GeometryError
from LiverLesionSegLib.metrics import (
    RULES, CaseMetrics, assd_hd95, dice, evaluate_case, lesion_detection, lesions_found_by_both, summarise,
    surface_distances,
)
from LiverLesionSegLib.volume import Volume

ANISOTROPIC = (0.7, 0.9, 2.5)  # (i, j, k) mm


def mask(shape=(5, 6, 7), voxels=()) -> np.ndarray:
    array = np.zeros(shape, np.uint8)
    for kji in voxels:
        array[kji] = 1
    return array


# --- Dice ----------------------------------------------------------------------------------------

def test_dice_of_known_overlap():
    pred = mask(voxels=[(0, 0, 0), (0, 0, 1), (0, 0, 2), (4, 5, 6)])  # 4 voxels
    truth = mask(voxels=[(0, 0, 0), (0, 0, 1), (0, 0, 2), (1, 1, 1), (2, 2, 2), (3, 3, 3)])  # 6, 3 shared
    assert dice(pred, truth) == pytest.approx(2 * 3 / 10)


def test_dice_is_three_dimensional_not_per_slice():
    # Per-slice averaging would give (1 + 0) / 2 for these; the 3-D Dice is 2*1/3.
    pred = mask(voxels=[(0, 0, 0)])
    truth = mask(voxels=[(0, 0, 0), (1, 0, 0)])
    assert dice(pred, truth) == pytest.approx(2 / 3)


def test_dice_empty_rules():
    empty = mask()
    one = mask(voxels=[(1, 1, 1)])
    assert dice(empty, empty) == 1.0
    assert dice(one, empty) == 0.0
    assert dice(empty, one) == 0.0
    assert dice(one, one) == 1.0


def test_dice_accepts_volumes_and_refuses_other_shapes():
    one = mask(voxels=[(1, 1, 1)])
    assert dice(Volume(one, (1, 1, 1), (0, 0, 0)), one) == 1.0
    with pytest.raises(GeometryError):
        dice(one, np.zeros((5, 6, 8), np.uint8))


# --- detection -----------------------------------------------------------------------------------

def two_true_lesions() -> np.ndarray:
    truth = mask((6, 10, 10))
    truth[0:2, 0:2, 0:2] = 1  # lesion A
    truth[4, 7, 7] = 1  # lesion B: two voxels touching only at a corner
    truth[5, 8, 8] = 1
    return truth


def test_detection_counts_one_found_one_missed_one_false_positive():
    truth = two_true_lesions()
    pred = mask((6, 10, 10))
    pred[1, 1, 1:4] = 1  # overlaps lesion A
    pred[0, 8:10, 0:2] = 1  # overlaps nothing
    found = lesion_detection(pred, truth)
    assert (found.true_lesions, found.pred_lesions) == (2, 2)
    assert (found.detected, found.missed) == (1, 1)
    assert (found.pred_true_positive, found.pred_false_positive) == (1, 1)
    assert found.precision == 0.5 and found.recall == 0.5 and found.f1 == 0.5


def test_corner_touching_voxels_are_one_lesion():
    truth = mask(voxels=[(0, 0, 0), (1, 1, 1)])
    assert lesion_detection(truth, truth).true_lesions == 1
    # With 6-connectivity these would be two lesions, one missed:
    pred = mask(voxels=[(0, 0, 0)])
    found = lesion_detection(pred, truth)
    assert (found.detected, found.missed, found.recall) == (1, 0, 1.0)


def test_one_prediction_covering_two_lesions():
    truth = two_true_lesions()
    pred = mask((6, 10, 10))
    pred[0:6, 0:10, 0:10] = 1
    found = lesion_detection(pred, truth)
    assert (found.detected, found.pred_true_positive, found.pred_lesions) == (2, 1, 1)
    assert found.precision == 1.0 and found.recall == 1.0


def test_undefined_detection_values_are_none():
    empty, one = mask(), mask(voxels=[(2, 2, 2)])
    nothing_to_find = lesion_detection(one, empty)
    assert nothing_to_find.recall is None and nothing_to_find.precision == 0.0 and nothing_to_find.f1 == 0.0
    nothing_predicted = lesion_detection(empty, one)
    assert nothing_predicted.precision is None and nothing_predicted.recall == 0.0 and nothing_predicted.f1 == 0.0
    neither = lesion_detection(empty, empty)
    assert neither.precision is None and neither.recall is None and neither.f1 is None


# --- surface distances ---------------------------------------------------------------------------

def test_planes_two_slices_apart_with_anisotropic_spacing():
    pred, truth = mask(), mask()
    pred[1, 1:5, 1:6] = 1
    truth[3, 1:5, 1:6] = 1  # two slices of 2.5 mm further
    assd_mm, hd95_mm = assd_hd95(pred, truth, ANISOTROPIC)
    assert assd_mm == pytest.approx(5.0) and hd95_mm == pytest.approx(5.0)


def test_planes_shifted_along_i():
    pred, truth = mask(), mask()
    pred[0:5, 0:6, 1] = 1
    truth[0:5, 0:6, 4] = 1  # three columns of 0.7 mm further
    assd_mm, hd95_mm = assd_hd95(pred, truth, ANISOTROPIC)
    assert assd_mm == pytest.approx(2.1) and hd95_mm == pytest.approx(2.1)


def test_cube_shifted_by_one_column_uses_the_surface_only():
    # 3x3x3 cubes at i 1..3 and 2..4: 26 surface voxels each (all but the centre). Per direction,
    # the 9 voxels of the leading face are 0.7 mm away, and so is the centre column's voxel whose
    # partner is the other cube's (interior) centre; the other 16 lie on the other surface.
    pred, truth = mask(), mask()
    pred[1:4, 1:4, 1:4] = 1
    truth[1:4, 1:4, 2:5] = 1
    forward, backward = surface_distances(pred, truth, ANISOTROPIC)
    assert sorted(forward.round(6)) == [0.0] * 16 + [0.7] * 10
    assert sorted(backward.round(6)) == [0.0] * 16 + [0.7] * 10
    assd_mm, hd95_mm = assd_hd95(pred, truth, ANISOTROPIC)
    assert assd_mm == pytest.approx(20 * 0.7 / 52)
    assert hd95_mm == pytest.approx(0.7)  # 95th percentile of 16 zeros and 10 x 0.7


def test_hd95_is_the_larger_directed_percentile():
    truth, pred = mask(), mask()
    truth[0, 0:5, 0:5] = 1
    pred[0, 0:5, 0:5] = 1
    pred[4, 0:5, 0:5] = 1  # 25 extra voxels 4 slices (10 mm) away
    # pred -> truth: 25 zeros and 25 x 10 mm; truth -> pred: 25 zeros.
    assd_mm, hd95_mm = assd_hd95(pred, truth, ANISOTROPIC)
    assert hd95_mm == pytest.approx(10.0)
    assert assd_mm == pytest.approx(25 * 10.0 / 75)
    assert assd_hd95(truth, pred, ANISOTROPIC) == pytest.approx((assd_mm, hd95_mm))


def test_surface_distance_empty_rules():
    empty, one = mask(), mask(voxels=[(1, 1, 1)])
    assert assd_hd95(empty, empty, ANISOTROPIC) == (0.0, 0.0)
    assert assd_hd95(one, empty, ANISOTROPIC) == (None, None)
    assert assd_hd95(empty, one, ANISOTROPIC) == (None, None)


def brute_force_surface(array: np.ndarray) -> np.ndarray:
    """Voxels with a face neighbour outside the mask or outside the image, by explicit shifts."""
    padded = np.pad(array.astype(bool), 1)
    inner = padded[1:-1, 1:-1, 1:-1]
    all_neighbours_in = np.ones_like(inner)
    for axis in range(3):
        for step in (-1, 1):
            all_neighbours_in &= np.roll(padded, step, axis=axis)[1:-1, 1:-1, 1:-1]
    return inner & ~all_neighbours_in


def brute_force_assd_hd95(pred, truth, spacing):
    scale = np.asarray(spacing, float)[::-1]
    a = np.argwhere(brute_force_surface(pred)) * scale
    b = np.argwhere(brute_force_surface(truth)) * scale
    pairwise = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    forward, backward = pairwise.min(axis=1), pairwise.min(axis=0)
    assd_mm = (forward.sum() + backward.sum()) / (forward.size + backward.size)
    return assd_mm, max(np.percentile(forward, 95), np.percentile(backward, 95))


def edt_assd_hd95(pred, truth, spacing):
    """The same measures through Euclidean distance transforms on the whole grid."""
    sampling = np.asarray(spacing, float)[::-1]
    surface_p, surface_t = brute_force_surface(pred), brute_force_surface(truth)
    forward = ndimage.distance_transform_edt(~surface_t, sampling=sampling)[surface_p]
    backward = ndimage.distance_transform_edt(~surface_p, sampling=sampling)[surface_t]
    assd_mm = (forward.sum() + backward.sum()) / (forward.size + backward.size)
    return assd_mm, max(np.percentile(forward, 95), np.percentile(backward, 95))


@pytest.mark.parametrize("seed", range(12))
def test_surface_measures_match_brute_force_and_distance_transform(seed):
    rng = np.random.default_rng(seed)
    shape = (rng.integers(3, 9), rng.integers(3, 12), rng.integers(3, 12))
    pred = ndimage.binary_dilation(rng.random(shape) < 0.08).astype(np.uint8)
    truth = ndimage.binary_dilation(rng.random(shape) < 0.08).astype(np.uint8)
    if not pred.any() or not truth.any():
        pred[0, 0, 0] = truth[-1, -1, -1] = 1
    spacing = tuple(rng.uniform(0.3, 3.0, 3))
    got = assd_hd95(pred, truth, spacing)
    assert got == pytest.approx(brute_force_assd_hd95(pred, truth, spacing))
    assert got == pytest.approx(edt_assd_hd95(pred, truth, spacing))


def test_cropping_does_not_change_distances_far_apart_masks():
    rng = np.random.default_rng(7)
    pred, truth = np.zeros((30, 40, 50), np.uint8), np.zeros((30, 40, 50), np.uint8)
    pred[2:8, 3:9, 40:48] = rng.random((6, 6, 8)) < 0.6
    truth[20:28, 30:38, 1:6] = rng.random((8, 8, 5)) < 0.6
    assert assd_hd95(pred, truth, ANISOTROPIC) == pytest.approx(brute_force_assd_hd95(pred, truth, ANISOTROPIC))


# --- one case ------------------------------------------------------------------------------------

def test_evaluate_case_volumes_and_flags():
    spacing = (0.5, 0.5, 2.0)  # 0.5 mm³ per voxel
    true_lesion = mask((4, 8, 8))
    true_lesion[1, 1:4, 1:3] = 1  # 6 voxels
    pred_lesion = mask((4, 8, 8))
    pred_lesion[1, 2:4, 1:3] = 1  # 4 shared
    pred_lesion[3, 6, 0:6] = 1  # 6 outside the truth, a second component
    liver = mask((4, 8, 8))
    liver[0:3, 0:6, 0:6] = 1
    result = evaluate_case("case 1", liver, pred_lesion, liver, true_lesion, spacing)
    assert result.name == "case 1"
    assert result.lesion_dice == pytest.approx(2 * 4 / 16)
    assert result.liver_dice == 1.0 and result.liver_assd_mm == 0.0 and result.liver_hd95_mm == 0.0
    assert (result.lesion_pred_voxels, result.lesion_true_voxels, result.lesion_intersection_voxels) == (10, 6, 4)
    assert result.fp_lesion_volume_ml == pytest.approx(6 * 0.5 / 1000)
    assert result.pred_lesion_volume_ml == pytest.approx(10 * 0.5 / 1000)
    assert result.true_lesion_volume_ml == pytest.approx(6 * 0.5 / 1000)
    assert (result.detected_lesions, result.pred_false_positive_lesions) == (1, 1)
    assert result.lesion_precision == 0.5 and result.lesion_recall == 1.0
    assert not result.lesion_both_empty and not result.liver_both_empty
    # 108 liver voxels (3 x 6 x 6), in both masks
    assert (result.pred_tumour_burden, result.true_tumour_burden) == pytest.approx((10 / 108, 6 / 108))
    no_liver = evaluate_case("no liver", mask((4, 8, 8)), pred_lesion, liver, true_lesion, spacing)
    assert no_liver.pred_tumour_burden is None
    assert summarise([result])["tumour_burden_rmse"] == pytest.approx(4 / 108)

    empty = mask((4, 8, 8))
    lesion_free = evaluate_case("case 2", liver, empty, liver, empty, spacing)
    assert lesion_free.lesion_both_empty and lesion_free.lesion_dice == 1.0
    assert lesion_free.lesion_recall is None and lesion_free.lesion_precision is None


def test_evaluate_case_is_fast_on_a_full_size_case():
    import time

    shape = (200, 512, 512)
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    true_liver = ((k - 100) / 60) ** 2 + ((j - 250) / 120) ** 2 + ((i - 260) / 130) ** 2 < 1
    pred_liver = ((k - 101) / 60) ** 2 + ((j - 252) / 118) ** 2 + ((i - 258) / 132) ** 2 < 1
    true_lesion = ((k - 100) / 8) ** 2 + ((j - 250) / 20) ** 2 + ((i - 260) / 20) ** 2 < 1
    pred_lesion = ((k - 101) / 8) ** 2 + ((j - 252) / 20) ** 2 + ((i - 258) / 22) ** 2 < 1
    start = time.perf_counter()
    result = evaluate_case("big", pred_liver, pred_lesion, true_liver, true_lesion, (0.7, 0.7, 2.5))
    elapsed = time.perf_counter() - start
    assert 0.8 < result.liver_dice < 1.0 and result.liver_hd95_mm > 0
    assert elapsed < 3.0, f"evaluate_case took {elapsed:.2f} s"  # about 0.6 s here; slack for busy machines


# --- summaries -----------------------------------------------------------------------------------

def three_cases() -> list[CaseMetrics]:
    shape = (3, 6, 6)
    spacing = (1.0, 1.0, 1.0)
    # Case a: lesion |P| 4, |T| 6, |P∩T| 3 (one lesion, found); liver |P| 8, |T| 8, |P∩T| 6.
    a_pred_lesion, a_true_lesion = mask(shape), mask(shape)
    a_pred_lesion[1, 0, 0:4] = 1
    a_true_lesion[1, 0, 1:4] = 1
    a_true_lesion[1, 1, 1:4] = 1
    a_pred_liver, a_true_liver = mask(shape), mask(shape)
    a_pred_liver[0, 0:2, 0:4] = 1
    a_true_liver[0, 0:2, 1:5] = 1
    # Case b: lesion predicted where there is none (|P| 2, |T| 0); liver perfect, 10 voxels.
    b_pred_lesion, b_true_lesion = mask(shape), mask(shape)
    b_pred_lesion[2, 5, 4:6] = 1
    b_liver = mask(shape)
    b_liver[1, 0:2, 0:5] = 1
    # Case c: no lesion anywhere (empty vs empty); liver missed (|P| 0, |T| 5).
    c_empty = mask(shape)
    c_true_liver = mask(shape)
    c_true_liver[2, 3, 0:5] = 1
    return [
        evaluate_case("a", a_pred_liver, a_pred_lesion, a_true_liver, a_true_lesion, spacing),
        evaluate_case("b", b_liver, b_pred_lesion, b_liver, b_true_lesion, spacing),
        evaluate_case("c", c_empty, c_empty, c_true_liver, c_empty, spacing),
    ]


def test_summary_against_hand_computation():
    cases = three_cases()
    assert [c.lesion_dice for c in cases] == pytest.approx([0.6, 0.0, 1.0])
    summary = summarise(cases)
    assert summary["n_cases"] == 3 and summary["n_lesion_both_empty"] == 1
    assert summary["lesion_dice_global"] == pytest.approx(2 * (3 + 0 + 0) / ((4 + 6) + (2 + 0) + 0))  # 0.5
    assert summary["liver_dice_global"] == pytest.approx(2 * (6 + 10 + 0) / ((8 + 8) + (10 + 10) + (0 + 5)))
    assert summary["lesion_dice_mean"] == pytest.approx((0.6 + 0.0 + 1.0) / 3)
    assert summary["lesion_dice_median"] == pytest.approx(0.6)
    assert summary["lesion_dice_mean_excluding_empty"] == pytest.approx(0.3)
    assert summary["lesion_dice_median_excluding_empty"] == pytest.approx(0.3)
    assert summary["liver_dice_mean"] == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    # Pooled detection: 1 true lesion found; 2 predicted components, 1 on a lesion.
    assert (summary["true_lesions"], summary["detected_lesions"], summary["pred_lesions"]) == (1, 1, 2)
    assert summary["pred_false_positive_lesions"] == 1 and summary["missed_lesions"] == 0
    assert summary["lesion_precision"] == pytest.approx(0.5)
    assert summary["lesion_recall"] == pytest.approx(1.0)
    assert summary["lesion_f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # Lesion distances: case a only (b is undefined, c is empty vs empty and left out).
    assert summary["lesion_assd_mm_n"] == 1
    assert summary["lesion_assd_mm_mean"] == pytest.approx(cases[0].lesion_assd_mm)
    # Liver distances: a and b (c has one empty mask).
    assert summary["liver_hd95_mm_n"] == 2
    assert summary["liver_hd95_mm_mean"] == pytest.approx((cases[0].liver_hd95_mm + 0.0) / 2)


def test_summary_of_nothing_is_all_undefined():
    summary = summarise([])
    assert summary["n_cases"] == 0
    assert summary["lesion_dice_mean"] is None and summary["lesion_dice_global"] is None
    assert summary["lesion_precision"] is None and summary["lesion_f1"] is None
    assert summary["tumour_burden_rmse"] is None


def test_rules_are_stated():
    for key in ("dice", "detection", "surface", "assd", "hd95", "empty_surfaces", "tumour_burden"):
        assert RULES[key]


def test_lesions_found_by_both_leave_out_the_lesions_only_one_mask_has():
    a = np.zeros((4, 10, 10), np.uint8)
    b = np.zeros_like(a)
    a[1:3, 1:4, 1:4] = 1  # found by both, a little larger in a
    b[1:3, 2:4, 2:4] = 1
    a[1:3, 7:9, 7:9] = 1  # a's alone
    b[0, 0, 8] = 1  # b's alone
    ours, theirs = lesions_found_by_both(a, b)
    assert ours.sum() == 18 and theirs.sum() == 8
    assert not ours[:, 7:9, 7:9].any() and not theirs[0, 0, 8]
