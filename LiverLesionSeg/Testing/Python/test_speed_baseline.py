"""The speed benchmark's naive baseline is the same pipeline as the fast path (the same masks
within the fast path's tolerance), so that its speed-up compares like with like."""

import sys
from pathlib import Path

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.infer import segment_volume
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.metrics import dice
from LiverLesionSegLib.resources import sample_case_path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import speed  # noqa: E402


def test_naive_baseline_gives_the_fast_paths_masks_on_the_sample_case(model_path):
    checkpoint = load_checkpoint(model_path)
    volume = read_input_volume(sample_case_path())
    fast = segment_volume(volume, checkpoint)
    naive_liver, naive_lesion = speed.naive_segment(volume, checkpoint)
    assert naive_liver.sum() > 1000
    assert dice(fast.liver.array, naive_liver) >= 0.99
    if naive_lesion.sum() > 200:  # Dice of a few voxels says nothing
        assert dice(fast.lesion.array, naive_lesion) >= 0.99
