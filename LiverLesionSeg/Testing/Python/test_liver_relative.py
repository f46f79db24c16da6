"""The liver's box shifted in HU so that the liver's median lands on a reference: in training as in
inference, measured on the whole slices where the liver is."""

import numpy as np
import torch

from LiverLesionSegLib.config import Config
from LiverLesionSegLib.dataset import prepare_case
from LiverLesionSegLib.infer import segment_canonical
from LiverLesionSegLib.preprocess import liver_hu_shift, prepare_ct
from LiverLesionSegLib.volume import Case, Volume


def _phantom(liver_hu=55, spot_hu=90):
    """Air, a 'liver' block at `liver_hu` with a 'lesion' spot at `spot_hu`."""
    ct = np.full((10, 64, 64), -1000, np.int16)
    ct[2:8, 16:48, 12:44] = liver_hu
    ct[4:6, 28:36, 24:32] = spot_hu
    liver = (ct > -1000).astype(np.uint8)
    volume = Volume(ct, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    return volume, liver


def _config(reference):
    config = Config()
    p = config.preprocess
    p.size, p.zoom, p.zoom_margin_mm, p.zoom_extra_slices, p.liver_reference_hu = 32, True, 4, 1, reference
    config.inference.flip_check = False  # a phantom: no body, no spine to judge its orientation by
    return config


def _level(hu, p):
    return (hu - p.hu_min) / (p.hu_max - p.hu_min) * 255


def test_shift_puts_the_liver_median_on_the_reference():
    volume, liver = _phantom()
    p = _config(100.0).preprocess
    stack = prepare_ct(volume.array, p)
    small_liver = prepare_ct(np.where(liver > 0, 250, -100).astype(np.int16), p) > 128
    assert abs(liver_hu_shift(stack, small_liver, p) - 45) < 1.5  # 8-bit levels: 1.4 HU each
    assert liver_hu_shift(stack, np.zeros_like(small_liver), p) == 0.0  # no liver found: no shift
    assert liver_hu_shift(stack, small_liver, _config(None).preprocess) == 0.0  # off


def test_training_views_the_box_shifted_and_the_whole_slices_not():
    volume, liver = _phantom()
    case = Case("phantom", volume, volume.with_array(liver), volume.with_array(np.zeros_like(liver)))
    for reference, box_liver_hu in ((None, 55), (100.0, 100)):
        p = _config(reference).preprocess
        whole, box = prepare_case(case, p).views
        inside = box.targets[:, 0] == 255
        assert abs(np.median(whole.stack[whole.targets[:, 0] == 255]) - _level(55, p)) <= 1
        assert abs(np.median(box.stack[inside]) - _level(box_liver_hu, p)) <= 1.5


class _Threshold(torch.nn.Module):
    """Liver where the centre channel is above 5 HU, lesion where it is above 120 HU."""

    def forward(self, x):
        centre = x[:, x.shape[1] // 2:x.shape[1] // 2 + 1]
        return torch.cat([60 * (centre - 0.3), 60 * (centre - 0.63)], dim=1)


def test_inference_shifts_the_box_by_the_liver_it_found():
    """A spot 35 HU brighter than a dark (55 HU) liver: at 90 HU it stays under the network's 120 HU
    lesion line; shifted with the liver to 100 HU, it lands at 135 HU and is found."""
    volume, _ = _phantom()
    found = {}
    for reference in (None, 100.0):
        config = _config(reference)
        config.inference.precision, config.inference.min_lesion_mm3 = "float32", 0.0
        liver, lesion, *_ = segment_canonical(volume, _Threshold(), config.preprocess, config.inference)
        assert liver[2:8, 16:48, 12:44].mean() > 0.9
        found[reference] = lesion[4:6, 28:36, 24:32].mean(), lesion.sum() - lesion[4:6, 28:36, 24:32].sum()
    assert found[None][0] < 0.05  # (the edges of an 8-pixel spot blur at the network's 32 pixels)
    assert found[100.0][0] > 0.5 and found[100.0][1] < 0.1 * 128  # the spot, and little else
