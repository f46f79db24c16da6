"""The fast path gives the masks of the plain path on every shared case, within a stated tolerance.

Plain: one slice at a time, float32, every slice. Fast: batches, channels-last, the liver looked
for on every other slice away from it, and bfloat16 where the processor computes it natively (its
first convolution in float32). The stated tolerance: liver masks within Dice 0.99 of the plain
path on every case; the same lesions on every case, up to a lesion that the rule on the liver
around a lesion judges within 0.05 of its bound (a liver a few voxels different moves it across);
and the lesions both paths find within Dice 0.99 where they hold more than 5,000 voxels.
"""

import dataclasses

import numpy as np
import pytest

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.infer import segment_volume
from LiverLesionSegLib.metrics import dice, lesion_detection, lesions_found_by_both

from shared_cases import every_shared_case

TOLERANCE = 0.99
RULE_MARGIN = 0.05


@pytest.mark.slow
@pytest.mark.parametrize("name, case", every_shared_case())
def test_fast_masks_match_the_plain_path(name, case, model_path, core_segmentation):
    """The fast path is the core's own settings (`core_segmentation`)."""
    checkpoint = load_checkpoint(model_path)
    volume, fast = core_segmentation(case)
    plain_config = dataclasses.replace(checkpoint.config.inference, batch_size=1, precision="float32",
                                       locate_stride=1)
    plain = segment_volume(volume, checkpoint, plain_config)
    assert plain.liver.array.sum() > 1000
    assert dice(fast.liver.array, plain.liver.array) >= TOLERANCE
    _assert_same_lesions(fast.lesion.array, plain.lesion.array, volume, checkpoint, plain_config)
    # Dice of a lesion mask of a few mL says little: its voxels are mostly surface, and its rim is
    # grown down to a probability of 0.2 where bfloat16 moves a few of them (3Dircadb1.7: 2
    # lesions, 749 voxels: Dice 0.985)
    ours, theirs = lesions_found_by_both(fast.lesion.array, plain.lesion.array)
    if theirs.sum() > 5000:
        assert dice(ours, theirs) >= TOLERANCE


def _assert_same_lesions(lesion: np.ndarray, plain_lesion: np.ndarray, volume, checkpoint, plain_config) -> None:
    found = lesion_detection(lesion, plain_lesion)
    if found.missed == 0 and found.pred_false_positive == 0:
        return
    # Only a lesion at the bound of the rule on the liver around it may differ: every lesion is one
    # the plain path keeps with the bound 0.05 lower, and every one it keeps 0.05 higher is found.
    bound = plain_config.min_liver_around_lesion
    assert bound > 0, found
    lax, strict = (segment_volume(volume, checkpoint, dataclasses.replace(
        plain_config, min_liver_around_lesion=min(max(bound + d, 0.0), 1.0))).lesion.array
        for d in (-RULE_MARGIN, RULE_MARGIN))
    assert lesion_detection(lesion, lax).pred_false_positive == 0, found
    assert lesion_detection(lesion, strict).missed == 0, found



# --- thin slices: the network on every n-th slice ------------------------------------------------

def test_model_step_keeps_slices_at_least_the_spacing_apart():
    from LiverLesionSegLib.config import InferenceConfig
    from LiverLesionSegLib.infer import model_step

    config = InferenceConfig(model_slice_spacing_mm=2.0)
    steps = [model_step(spacing, config) for spacing in (0.5, 0.625, 0.8, 1.0, 1.25, 1.6, 2.5, 5.0)]
    assert steps == [4, 3, 2, 2, 1, 1, 1, 1]
    assert model_step(0.625, InferenceConfig(model_slice_spacing_mm=0.0)) == 1


def test_interpolated_slices_are_exact_where_sampled_and_linear_between():
    from LiverLesionSegLib.infer import interpolate_slices

    at = np.array([0, 3, 6, 7])
    values = np.array([0.0, 3.0, 9.0, 10.0], np.float32)[:, None] * np.ones((1, 2), np.float32)
    out = interpolate_slices(values, at, 8)
    np.testing.assert_allclose(out[:, 0], [0, 1, 2, 3, 5, 7, 9, 10], atol=1e-6)
    assert out.shape == (8, 2) and out.dtype == np.float32


@pytest.mark.slow
@pytest.mark.parametrize("case, factor", [("tace/RadCTTACEomics_1211", 0.25), ("ircadb/3Dircadb1.17", 0.5)])
def test_thin_slices_sampled_match_every_slice(case, factor, data_dir, model_path):
    """1211 at 0.625 mm (every third slice looked at) and 3Dircadb1.17 at 0.8 mm (every second),
    re-sliced from the real cases over the liver and a margin: the masks of every slice within
    the fast path's tolerance, the same lesions."""
    import sys
    from pathlib import Path

    import slicer_logic_cases
    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.volume import Case

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    import slice_spacing

    whole = load_case(find_cases(data_dir / case)[0])
    k = np.flatnonzero(whole.liver.array.any(axis=(1, 2)))
    first = max(int(k[0]) - 8, 0)
    count = min(int(k[-1]) + 9, whole.ct.shape[0]) - first
    cropped = Case(whole.name, *(slicer_logic_cases.crop_slices(v, first, count)
                                 for v in (whole.ct, whole.liver, whole.lesion)))
    thin = slice_spacing.resliced(cropped, factor).ct
    checkpoint = load_checkpoint(model_path)
    every = dataclasses.replace(checkpoint.config.inference, model_slice_spacing_mm=0.0)
    plain = segment_volume(thin, checkpoint, every)
    sampled = segment_volume(thin, checkpoint)
    assert plain.liver.array.sum() > 1000
    assert dice(sampled.liver.array, plain.liver.array) >= TOLERANCE
    _assert_same_lesions(sampled.lesion.array, plain.lesion.array, thin, checkpoint, every)
    ours, theirs = lesions_found_by_both(sampled.lesion.array, plain.lesion.array)
    if theirs.sum() > 5000:
        assert dice(ours, theirs) >= 0.98
