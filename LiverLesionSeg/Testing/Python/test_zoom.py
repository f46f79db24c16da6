"""The liver's box: geometry of the box, crops past the image edge, and the two-pass inference."""

import numpy as np

from LiverLesionSegLib.config import Config
from LiverLesionSegLib.dataset import prepare_case
from LiverLesionSegLib.volume import Case, Volume
from LiverLesionSegLib.zoom import Box, crop, liver_box, paste


def test_box_is_square_with_margin_and_extra_slices():
    liver = np.zeros((20, 100, 100), np.uint8)
    liver[5:10, 40:60, 30:80] = 1  # 20 rows x 50 columns
    box = liver_box(liver, (0.5, 0.5, 2.0), margin_mm=5, extra_slices=2)
    assert (box.k0, box.k1) == (3, 12)
    assert box.side == 50 + 2 * 10  # the larger side plus a 10-pixel margin each way
    assert box.i0 == 30 - 10 and box.j0 == round(50 - 35)
    assert liver_box(np.zeros((3, 4, 4)), (1, 1, 1), 5, 1) is None


def test_crop_and_paste_past_the_edge_round_trip():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 100, (4, 10, 12)).astype(np.int16)
    box = Box(1, 3, -3, 8, 8)  # reaches past the top and right edges
    cropped = crop(image, box, fill=-1)
    assert cropped.shape == (2, 8, 8)
    assert np.array_equal(cropped[:, 3:, :4], image[1:3, 0:5, 8:12])
    assert (cropped[:, :3] == -1).all() and (cropped[:, :, 4:] == -1).all()
    target = np.zeros_like(image)
    paste(target, cropped, box)
    assert np.array_equal(target[1:3, 0:5, 8:12], image[1:3, 0:5, 8:12])
    assert target.sum() == image[1:3, 0:5, 8:12].sum()


def test_zoom_adds_the_liver_box_view():
    ct = Volume(np.full((6, 64, 64), -1000, np.int16), (1, 1, 2), (0, 0, 0))
    liver = np.zeros((6, 64, 64), np.uint8)
    liver[2:4, 20:30, 20:30] = 1
    case = Case("x", ct, ct.with_array(liver), ct.with_array(np.zeros_like(liver)))
    config = Config().preprocess
    config.size, config.zoom, config.zoom_margin_mm, config.zoom_extra_slices = 32, True, 5, 1
    prepared = prepare_case(case, config)
    whole, zoomed = prepared.views
    assert whole.stack.shape == (6, 32, 32) and zoomed.stack.shape == (4, 32, 32)
    # the liver fills far more of the box than of the slice
    assert zoomed.targets[:, 0].mean() > 4 * whole.targets[:, 0].mean()


def test_quantised_box_does_not_move_with_a_pixel_of_liver():
    """A liver found a network pixel wider gives the same box: the second pass stays the same."""
    import numpy as np

    from LiverLesionSegLib.zoom import liver_box_from_network_grid

    liver = np.zeros((10, 128, 128), np.uint8)
    liver[2:8, 40:90, 20:80] = 1
    wider = liver.copy()
    wider[2:8, 60:62, 80] = 1  # a few pixels more at the edge, as another precision may find
    args = (np.arange(10), (10, 512, 512), (0.8, 0.8, 2.5), 15.0, 2)
    box = liver_box_from_network_grid(liver, *args, quantum=32)
    assert box.side % 32 == 0 and box.j0 % 8 == 0 and box.i0 % 8 == 0
    assert liver_box_from_network_grid(wider, *args, quantum=32) == box
    assert liver_box_from_network_grid(wider, *args, quantum=1) != liver_box_from_network_grid(liver, *args, quantum=1)
