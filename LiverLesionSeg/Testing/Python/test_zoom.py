"""The liver's box: geometry of the box, crops past the image edge, and the two-pass inference."""

import numpy as np
import pytest
import torch

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


def test_tiles_cover_the_box_overlapping_from_corner_to_corner():
    from LiverLesionSegLib.zoom import tiles

    box = Box(2, 9, -10, 30, 200)
    parts = tiles(box, 2, 0.6)
    assert len(parts) == 4 and all(p.side == 120 and (p.k0, p.k1) == (2, 9) for p in parts)
    assert (parts[0].j0, parts[0].i0) == (-10, 30) and (parts[-1].j0, parts[-1].i0) == (70, 110)
    covered = np.zeros((200, 200), int)
    for p in parts:
        covered[p.j0 + 10:p.j0 + 10 + p.side, p.i0 - 30:p.i0 - 30 + p.side] += 1
    assert covered.min() == 1 and covered.max() == 4  # every pixel, the middle by all four
    three = tiles(box, 3, 0.5)
    assert len(three) == 9 and three[4].j0 - box.j0 == 50


def test_tile_weights_peak_at_the_centre_and_fade_at_the_edge():
    from LiverLesionSegLib.zoom import tile_weights

    weights = tile_weights(40)
    assert weights.shape == (40, 40) and np.allclose(weights, weights.T) and np.allclose(weights, weights[::-1])
    assert weights[19, 19] == weights.max() > 0.99 and weights[0, 0] < 0.01 and weights.min() > 0


def test_zoom_tiles_add_four_finer_views_of_the_box():
    ct = Volume(np.full((6, 64, 64), -1000, np.int16), (1, 1, 2), (0, 0, 0))
    liver = np.zeros((6, 64, 64), np.uint8)
    liver[2:4, 20:40, 20:40] = 1
    liver[2:4, 20:26, 20:26] = 0  # less liver in the top-left corner of the box
    case = Case("x", ct, ct.with_array(liver), ct.with_array(np.zeros_like(liver)))
    config = Config().preprocess
    config.size, config.zoom, config.zoom_margin_mm, config.zoom_extra_slices = 32, True, 5, 1
    config.zoom_tiles = 2
    views = prepare_case(case, config).views
    assert len(views) == 6 and all(v.stack.shape == (4, 32, 32) for v in views[1:])
    box_liver, tile_liver = (v.targets[:, 0].astype(float).mean() for v in (views[1], views[2]))
    assert tile_liver > box_liver  # a tile is a closer look
    assert views[2].targets[:, 0].sum() < views[5].targets[:, 0].sum()  # the corner cut out of the liver


class _Threshold(torch.nn.Module):
    """A stand-in network that sees what the windowed CT shows: lesion from -30 to 23 HU, liver above 75 HU
    and under the lesion (as the real network marks it)."""

    def forward(self, x):
        centre = x[:, x.shape[1] // 2:x.shape[1] // 2 + 1].float()
        lesion = 40 * torch.minimum(centre - 0.2, 0.35 - centre)
        return torch.cat([torch.maximum(40 * (centre - 0.5), lesion), lesion], dim=1)


def _phantom():
    """A body of 40 HU, a liver of 150 HU off its centre, a lesion of 0 HU inside it."""
    k, j, i = np.mgrid[:10, :240, :240]
    body = (j - 120) ** 2 + (i - 120) ** 2 < 110 ** 2
    truth = ((j - 110) / 70.0) ** 2 + ((i - 100) / 55.0) ** 2 < 1
    hu = np.where(body, 40, -1000) + np.where(truth, 110, 0)
    spot = (j - 110) ** 2 + (i - 90) ** 2 + ((k - 5) * 3) ** 2 < 12 ** 2
    hu = np.where(spot, 0, hu).astype(np.int16)
    config = Config()
    config.preprocess.zoom, config.preprocess.zoom_margin_mm = True, 10
    config.inference.locate_stride, config.inference.box_quantum = 1, 1
    config.inference.flip_check = False  # a phantom: no body, no spine to judge its orientation by
    return Volume(hu, (0.8, 0.8, 3.0), (0, 0, 0)), truth, spot, config


def _tile_events(monkeypatch, cancel_after_search: bool):
    """Segment the phantom through 2 x 2 tiles, 4 slices a chunk; the progress events after the search
    for the liver (the first pass to end), and whether the job was cancelled."""
    from LiverLesionSegLib import infer
    from LiverLesionSegLib.errors import Cancelled
    from LiverLesionSegLib.progress import CallbackProgress

    monkeypatch.setattr(infer, "_UPSAMPLE_CHUNK", 4)
    ct, _, _, config = _phantom()
    config.preprocess.zoom_tiles = 2
    after_search: list[dict] = []
    searched = []

    def listen(event):
        if event.get("event") != "progress":
            return
        if searched:
            after_search.append(event)
        elif event["done"] == event["total"]:
            searched.append(event)
            if cancel_after_search:
                progress.cancel()

    progress = CallbackProgress(listen)
    try:
        infer.segment_canonical(ct, _Threshold(), config.preprocess, config.inference, progress=progress)
    except Cancelled:
        return after_search, True
    return after_search, False


def test_the_tiles_report_progress_chunk_by_chunk(monkeypatch):
    """With tile_weight 1 the box is not segmented on its own: after the search for the liver, the
    only passes are the tiles', one progress event per chunk of slices, up to the box's slice count."""
    events, cancelled = _tile_events(monkeypatch, cancel_after_search=False)
    assert not cancelled and len(events) >= 3
    done = [e["done"] for e in events]
    assert done == sorted(done) and len(set(done)) == len(done) and events[-1]["done"] == events[-1]["total"]
    assert all(e["total"] == events[0]["total"] for e in events) and done[0] == 4


def test_a_cancel_during_the_tiles_stops_the_segmentation(monkeypatch):
    """The tiles' passes run without the caller's progress (their events would jump back and forth),
    but a Cancel pressed after the search for the liver stops the job before the first tile chunk."""
    events, cancelled = _tile_events(monkeypatch, cancel_after_search=True)
    assert cancelled and events == []


def test_the_bar_moves_on_through_the_search_and_the_tiles(monkeypatch):
    """Through 2 x 2 tiles, 4 slices a chunk: each event of the network's stage puts the bar further on
    (the tiles' chunks carry on from the search's end, none starts again), and no stage event comes
    between the tiles' chunks (a postprocess end among them would fill the bar early)."""
    from LiverLesionSegLib import infer
    from LiverLesionSegLib.progress import CallbackProgress
    from LiverLesionSegLib.segment_job import STAGES, progress_percent

    monkeypatch.setattr(infer, "_UPSAMPLE_CHUNK", 4)
    ct, _, _, config = _phantom()
    config.preprocess.zoom_tiles = 2
    events: list[dict] = []
    infer.segment_canonical(ct, _Threshold(), config.preprocess, config.inference, progress=CallbackProgress(events.append))
    network = [progress_percent(e) for e in events if e.get("stage") == "model"]
    assert network == sorted(network) and network[-1] == STAGES["model"][1], network
    chunks = [i for i, e in enumerate(events) if e["event"] == "progress" and e["fraction"] > infer.SEARCH_SHARE]
    assert len(chunks) >= 3 and all(e["event"] == "progress" for e in events[chunks[0]:chunks[-1] + 1])


def test_tile_weight_blends_box_and_tiles_linearly():
    """The lesion probability at tile_weight 0.5 is the mean of the box's (weight 0) and the tiles'
    (weight 1), to the map's 1/1024 steps: the box's own pass is run, and blended, only below 1."""
    from LiverLesionSegLib.infer import PROBABILITY_STEPS, segment_canonical

    ct, _, _, config = _phantom()
    config.preprocess.zoom_tiles = 2
    probability = {}
    for weight in (0.0, 0.5, 1.0):
        config.inference.tile_weight = weight
        probability[weight] = segment_canonical(ct, _Threshold(), config.preprocess, config.inference)[2]
    assert np.abs(probability[0.0] - probability[1.0]).max() > 0.1  # box and tiles differ somewhere
    half = (probability[0.0] + probability[1.0]) / 2
    assert np.abs(probability[0.5] - half).max() <= 1.01 / PROBABILITY_STEPS


def test_tiles_land_where_they_were_cut_and_draw_a_finer_edge():
    """A phantom segmented by a thresholding network through the box alone and through its tiles: the
    tiles' output lies on the box's (a tile pasted elsewhere would not), follows the true liver more
    closely (finer pixels), and with tile_weight 0 is the box's exactly."""
    from LiverLesionSegLib.infer import segment_canonical

    ct, truth, spot, config = _phantom()

    def segment(tiles, weight):
        config.preprocess.zoom_tiles, config.inference.tile_weight = tiles, weight
        return segment_canonical(ct, _Threshold(), config.preprocess, config.inference)

    box_liver, box_lesion, box_probability, *_ = segment(1, 1.0)
    tile_liver, tile_lesion, *_ = segment(2, 1.0)
    same = segment(2, 0.0)
    assert np.array_equal(same[0], box_liver) and np.array_equal(same[2], box_probability)

    def dice(a, b):
        return 2 * (a.astype(bool) & b.astype(bool)).sum() / (a.astype(bool).sum() + b.astype(bool).sum())

    assert dice(tile_liver, box_liver) > 0.97 and dice(tile_lesion, box_lesion) > 0.8
    liver = truth | spot
    assert dice(tile_liver, liver) > dice(box_liver, liver)
    assert dice(tile_lesion, spot & truth) > 0.7


def test_box_from_the_network_grid_fits_images_of_any_size():
    """Images whose side is not 512 (a cropped CT, a 768 matrix, a grid grown by tilt resampling):
    the box from the network's 128-pixel grid holds the liver and lies around it, not scaled away."""
    from LiverLesionSegLib.zoom import liver_box, liver_box_from_network_grid

    for rows, columns in ((563, 512), (768, 768), (300, 280), (512, 512), (256, 200)):
        full = np.zeros((6, rows, columns), np.uint8)
        full[1:5, rows // 3:rows // 2, columns // 4:columns // 2] = 1
        j = (np.arange(128) + 0.5) * rows / 128
        i = (np.arange(128) + 0.5) * columns / 128
        network = full[:, j.astype(int)][:, :, i.astype(int)]  # the liver as the network's grid sees it
        spacing = (0.8, 0.8, 2.5)
        box = liver_box_from_network_grid(network, np.arange(6), full.shape, spacing, 10.0, 1, quantum=32)
        exact = liver_box(full, spacing, 10.0, 1)
        assert box.j0 <= exact.j0 + 8 and box.i0 <= exact.i0 + 8, (rows, columns, box, exact)
        assert box.j0 + box.side >= rows // 2 and box.i0 + box.side >= columns // 2, (rows, columns, box)
        assert box.side <= exact.side + 2 * 32 + 16, (rows, columns, box, exact)  # the quantum's rounding only
        assert crop(full, box, 0).sum() == full[box.k0:box.k1].sum()


def test_a_cropped_ct_is_segmented_as_the_whole_one_is(model_path):
    """The sample CT cropped to 320 x 300 pixels (Slicer's Crop Volume, or a CT not 512 wide): the
    two-pass inference runs (it crashed on sizes whose cells did not tile the network's grid) and
    finds the liver the whole CT gives, in the crop."""
    from LiverLesionSegLib.checkpoint import load_checkpoint
    from LiverLesionSegLib.infer import segment_volume
    from LiverLesionSegLib.io.cases import read_input_volume
    from LiverLesionSegLib.metrics import dice
    from LiverLesionSegLib.resources import sample_case_path

    whole = read_input_volume(sample_case_path())
    j, i = slice(96, 416), slice(40, 340)
    origin = whole.physical_points([[i.start, j.start, 0]])[0]
    cropped = Volume(whole.array[:, j, i].copy(), whole.spacing, tuple(origin), whole.direction)
    checkpoint = load_checkpoint(model_path)
    liver_whole = segment_volume(whole, checkpoint).liver.array[:, j, i]
    liver_cropped = segment_volume(cropped, checkpoint).liver.array
    assert liver_whole.sum() > 10_000 and dice(liver_cropped, liver_whole) > 0.9


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int16, np.float32])
def test_a_crop_past_the_edge_holds_air_whatever_the_ct_is_stored_as(dtype):
    image = np.full((2, 6, 6), 100, dtype)
    cropped = crop(image, Box(0, 2, -2, -2, 6), fill=-1024)
    assert cropped[0, 0, 0] == -1024 and cropped[0, 3, 3] == 100
