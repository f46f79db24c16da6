"""The fast path (batches, bfloat16 where the processor has it, channels-last, the liver found on
every other slice) gives the masks of the plain path (one slice at a time, float32, every slice)."""

import dataclasses

import pytest

from LiverLesionSegLib.checkpoint import load_checkpoint
from LiverLesionSegLib.infer import segment_volume
from LiverLesionSegLib.io.cases import read_input_volume
from LiverLesionSegLib.metrics import dice


@pytest.mark.slow
@pytest.mark.parametrize("case", ["ircadb/3Dircadb1.17", "tace/RadCTTACEomics_0697"])
def test_fast_masks_match_the_plain_path(case, data_dir, model_path):
    checkpoint = load_checkpoint(model_path)
    volume = read_input_volume(data_dir / case)
    fast_config = checkpoint.config.inference
    plain_config = dataclasses.replace(fast_config, batch_size=1, precision="float32", locate_stride=1)
    fast = segment_volume(volume, checkpoint, fast_config)
    plain = segment_volume(volume, checkpoint, plain_config)
    assert plain.liver.array.sum() > 1000
    assert dice(fast.liver.array, plain.liver.array) >= 0.99
    if plain.lesion.array.sum() > 200:  # Dice of a few voxels says nothing
        assert dice(fast.lesion.array, plain.lesion.array) >= 0.99
    assert fast.lesion_probability.array.shape == plain.lesion_probability.array.shape == volume.shape
