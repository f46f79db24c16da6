"""2.5-D neighbours at a distance in mm: the network sees the same depth around a slice whatever the
CT's slice spacing, in training as in inference."""

import numpy as np
import pytest
import torch

from LiverLesionSegLib.config import Config, PreprocessConfig
from LiverLesionSegLib.dataset import SliceSet, prepare_case
from LiverLesionSegLib.infer import segment_canonical
from LiverLesionSegLib.preprocess import channel_positions, network_input
from LiverLesionSegLib.volume import Case, Volume


def _ramp(slices: int, spacing_mm: float) -> np.ndarray:
    """A uint8 stack whose every pixel holds its slice's height in mm (a slope along z)."""
    return np.repeat((np.arange(slices) * spacing_mm)[:, None, None], 4, axis=1).repeat(4, axis=2).astype(np.uint8)


def test_without_a_distance_the_neighbours_are_the_next_slices_repeated_at_the_ends():
    stack = _ramp(6, 10.0)
    x = network_input(stack, np.array([0, 3, 5]), PreprocessConfig(context_slices=1)) * 255
    assert x[:, :, 0, 0].round().tolist() == [[0, 0, 10], [20, 30, 40], [40, 50, 50]]


@pytest.mark.parametrize("spacing", [0.625, 1.0, 1.6, 2.5])
def test_the_neighbours_lie_the_same_distance_away_whatever_the_slice_spacing(spacing):
    config = PreprocessConfig(context_slices=2, context_mm=2.5)
    stack = _ramp(int(60 / spacing), spacing)
    k = np.array([len(stack) // 2])
    height = k[0] * spacing
    x = network_input(stack, k, config, slice_spacing_mm=spacing)[0, :, 0, 0] * 255
    # Heights are whole mm in uint8 (rounded down): interpolation between them is within 1 mm.
    assert np.allclose(x.numpy(), [height - 5, height - 2.5, height, height + 2.5, height + 5], atol=1.0)
    assert config.context_reach(spacing) == int(np.ceil(5 / spacing - 1e-6))


def test_a_spacing_a_hair_off_a_whole_number_of_slices_takes_those_slices_not_a_blend():
    config = PreprocessConfig(context_slices=1, context_mm=2.5)
    indices = np.array([3])
    # 2.500011 mm: the spacing of positions rounded to 0.1 um, as an oblique DICOM series gives it
    assert channel_positions(indices, config, 2.500011).tolist() == [[2.0, 3.0, 4.0]]
    assert channel_positions(indices, config, 2.52).tolist() != [[2.0, 3.0, 4.0]]  # a real difference stays
    assert channel_positions(indices, config, 1.6).tolist() == [[3 - 2.5 / 1.6, 3.0, 3 + 2.5 / 1.6]]


def test_a_distance_needs_the_slice_spacing():
    with pytest.raises(ValueError, match="slice spacing"):
        network_input(_ramp(4, 1.0), np.array([1]), PreprocessConfig(context_slices=1, context_mm=2.5))


def _phantom(spacing_mm: float) -> Case:
    ct = np.full((12, 32, 32), -1000, np.int16)
    ct[:, 8:24, 8:24] = (np.arange(12) * 20)[:, None, None]  # brighter slice by slice
    volume = Volume(ct, (1.0, 1.0, spacing_mm), (0.0, 0.0, 0.0))
    liver = (ct > -1000).astype(np.uint8)
    return Case("ramp", volume, volume.with_array(liver), volume.with_array(np.zeros_like(liver)))


def test_training_batches_take_the_neighbours_at_the_distance():
    config = PreprocessConfig(size=32, context_slices=1, context_mm=1.0)
    slices = SliceSet([prepare_case(_phantom(2.0), config)])
    images, _ = slices.batch(np.array([5]), config)
    centre, below, above = images[0, 1, 16, 16], images[0, 0, 16, 16], images[0, 2, 16, 16]
    step = 20 / (config.hu_max - config.hu_min)  # one slice brighter, in window units
    assert abs((centre - below) - step / 2) < 0.01 and abs((above - centre) - step / 2) < 0.01


class _Recorder(torch.nn.Module):
    """Records what the network is given; finds nothing."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return torch.full((x.shape[0], 2) + tuple(x.shape[2:]), -10.0)


def test_inference_takes_the_neighbours_at_the_distance():
    config = Config()
    config.preprocess.size, config.preprocess.context_slices, config.preprocess.context_mm = 32, 1, 1.0
    config.inference.precision = "float32"
    config.inference.flip_check = False  # its slices would be recorded too
    network = _Recorder()
    segment_canonical(_phantom(2.0).ct, network, config.preprocess, config.inference)
    x = torch.cat(network.inputs)[:, :, 16, 16]
    step = 20 / (config.preprocess.hu_max - config.preprocess.hu_min)
    inside = x[1:-1]  # away from the ends, where the edge slice is repeated
    assert torch.allclose(inside[:, 1] - inside[:, 0], torch.tensor(step / 2), atol=0.01)
    assert torch.allclose(inside[:, 2] - inside[:, 1], torch.tensor(step / 2), atol=0.01)
