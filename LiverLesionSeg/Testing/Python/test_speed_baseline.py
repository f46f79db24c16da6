"""The speed benchmark's naive baseline is the same pipeline as the fast path (the same masks
within the fast path's tolerance), so that its speed-up compares like with like."""

import sys
from pathlib import Path

from LiverLesionSegLib.metrics import dice, lesions_found_by_both
from LiverLesionSegLib.resources import load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import speed  # noqa: E402


def test_naive_baseline_gives_the_fast_paths_masks_on_the_sample_case(sample_segmentation):
    volume, fast = sample_segmentation  # the bundled model's
    naive_liver, naive_lesion = speed.naive_segment(volume, load_model(None))
    assert naive_liver.sum() > 1000
    assert dice(fast.liver.array, naive_liver) >= 0.99
    # the lesions both find: a lesion at the bound of a clean-up rule may go either way (test_fast_path.py)
    ours, theirs = lesions_found_by_both(fast.lesion.array, naive_lesion)
    if theirs.sum() > 200:  # Dice of a few voxels says nothing
        assert dice(ours, theirs) >= 0.99


def test_training_throughput_runs_both_loops_with_neighbours_in_mm(data_dir, capsys):
    from LiverLesionSegLib.recipes import bundled

    config = bundled()
    assert config.preprocess.context_mm is not None  # the plain loop interpolates between slices too
    config.train.batch_size = 2
    speed.training_speed(data_dir, config, steps=1)
    printed = capsys.readouterr().out
    assert "slices/s for the plain loop" in printed and "3 input channel(s)" in printed
