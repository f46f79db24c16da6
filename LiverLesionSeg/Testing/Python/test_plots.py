"""The pictures: valid PNGs of the expected size, not blank, written atomically, no figure leaks."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.image import imread

from LiverLesionSegLib import plots
from LiverLesionSegLib.errors import GeometryError, InputError, OutputError
from LiverLesionSegLib.volume import Volume

SHAPE = (12, 40, 48)  # k, j, i


def history(validation: bool = True) -> dict:
    steps = [{"step": s, "cycle": 1 + s // 30, "epoch": 1 + s // 10, "loss": 1.0 / (1 + s % 30) + 0.05, "lr": 1e-3}
             for s in range(60)]
    epochs = [{"epoch": e, "cycle": 1 + (e - 1) // 3, "train_loss": 0.3,
               "val_lesion_dice": (0.1 * e if validation and e != 2 else None),
               "val_liver_dice": (0.8 + 0.02 * e if validation else None)} for e in range(1, 7)]
    return {"steps": steps, "epochs": epochs}


@pytest.fixture
def case() -> dict:
    rng = np.random.default_rng(0)
    ct = Volume(rng.normal(60, 60, SHAPE).astype(np.int16), (0.7, 0.9, 2.5), (0.0, 0.0, 0.0))
    liver = np.zeros(SHAPE, np.uint8)
    liver[2:10, 8:32, 8:40] = 1
    lesion = np.zeros(SHAPE, np.uint8)
    lesion[5:8, 15:22, 15:25] = 1
    lesion[6, 14:24, 14:26] = 1  # slice 6 has the largest lesion area
    predicted = np.roll(lesion, 2, axis=2)
    return {"ct": ct, "liver": ct.with_array(liver), "lesion": ct.with_array(lesion),
            "pred_lesion": ct.with_array(predicted),
            "probability": ct.with_array(np.clip(predicted * 0.9 + rng.random(SHAPE) * 0.1, 0, 1))}


def read_png(path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image[..., :3].var() > 0, "blank image"
    return image


def test_loss_plot(tmp_path):
    path = plots.plot_loss(history(), tmp_path / "loss.png")
    assert read_png(path).shape[:2] == (450, 800)  # 8 x 4.5 inches at 100 dpi
    read_png(plots.plot_loss(history(), tmp_path / "loss-log.png", log_scale=True))


def test_loss_plot_needs_steps(tmp_path):
    with pytest.raises(InputError):
        plots.plot_loss({"steps": [], "epochs": []}, tmp_path / "loss.png")
    assert list(tmp_path.iterdir()) == []


def test_dice_plot(tmp_path):
    assert read_png(plots.plot_dice(history(), tmp_path / "dice.png")).shape[:2] == (450, 800)


def test_dice_plot_without_validation(tmp_path):
    with pytest.raises(InputError, match="no validation"):
        plots.plot_dice(history(validation=False), tmp_path / "dice.png")
    assert list(tmp_path.iterdir()) == []


def test_prediction_panels(tmp_path, case):
    path = plots.plot_predictions(case["ct"], case["lesion"], case["liver"], case["pred_lesion"], case["liver"],
                                  case["probability"], tmp_path / "predictions.png", n=2)
    height, width = read_png(path).shape[:2]
    assert (height, width) == (round(2 * plots.PANEL_INCHES * 100), round((4 * plots.PANEL_INCHES + 0.6) * 100))


def test_prediction_panels_without_ground_truth(tmp_path, case):
    path = plots.plot_predictions(case["ct"], None, None, case["pred_lesion"], None, case["probability"],
                                  tmp_path / "predictions.png", slices=[3])
    assert read_png(path).shape[0] == round(plots.PANEL_INCHES * 100)


def test_choose_slices():
    lesion = np.zeros(SHAPE, bool)
    lesion[3, 0:2, 0:2] = True  # area 4
    lesion[5, 0:3, 0:3] = True  # area 9
    lesion[8, 0:1, 0:1] = True  # area 1
    predicted = np.zeros(SHAPE, bool)
    predicted[10, 0:5, 0:5] = True
    liver = np.zeros(SHAPE, bool)
    liver[2:9] = True  # slices 2..8
    assert plots.choose_slices(12, 2, lesion, predicted, liver) == [3, 5]
    assert plots.choose_slices(12, 5, lesion, predicted, liver) == [3, 5, 8]  # no empty slices
    assert plots.choose_slices(12, 2, None, predicted, liver) == [10]
    assert plots.choose_slices(12, 2, np.zeros(SHAPE, bool), None, liver) == [4, 6]  # 2..8 split in three
    assert plots.choose_slices(12, 1, None, None, None) == [6]  # middle of 0..11, rounded


def test_overlay(tmp_path, case):
    image = read_png(plots.plot_overlay(case["ct"], case["liver"], case["lesion"], tmp_path / "overlay.png"))
    assert image.shape[:2] == (640, 600)


def test_overlay_is_shown_as_stored(tmp_path):
    # Bright quarter at small j and large i: row j runs down, column i to the right, so it must be
    # the top-right quarter of the picture (a transposed or flipped image puts it elsewhere).
    array = np.full((1, 40, 40), -1000, np.int16)
    array[0, :20, 20:] = 1000
    ct = Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    image = read_png(plots.plot_overlay(ct, None, None, tmp_path / "orientation.png", slice_index=0))
    height, width = image.shape[:2]
    brightness = image[..., :3].mean(axis=2)
    assert brightness[int(0.3 * height), int(0.7 * width)] > 0.9
    for row, column in ((0.3, 0.3), (0.7, 0.3), (0.7, 0.7)):
        assert brightness[int(row * height), int(column * width)] < 0.1


def test_missing_folder_is_an_output_error_and_leaves_nothing(tmp_path, case):
    target = tmp_path / "missing" / "overlay.png"
    with pytest.raises(OutputError):
        plots.plot_overlay(case["ct"], case["liver"], case["lesion"], target)
    with pytest.raises(OutputError):
        plots.plot_loss(history(), tmp_path / "missing" / "loss.png")
    assert list(tmp_path.iterdir()) == []


def test_bad_input_leaves_no_file(tmp_path, case):
    with pytest.raises(InputError):
        plots.plot_overlay(case["ct"], case["liver"], case["lesion"], tmp_path / "o.png", slice_index=99)
    wrong_grid = Volume(np.zeros((3, 4, 5), np.uint8), (1, 1, 1), (0, 0, 0))
    with pytest.raises(GeometryError):
        plots.plot_predictions(case["ct"], wrong_grid, None, case["pred_lesion"], None, case["probability"],
                               tmp_path / "p.png")
    assert list(tmp_path.iterdir()) == []


def test_failure_while_saving_keeps_the_old_file_and_no_partial(tmp_path, case, monkeypatch):
    target = tmp_path / "overlay.png"
    target.write_bytes(b"old picture")

    def broken_savefig(self, *args, **kwargs):
        with open(args[0], "wb") as f:
            f.write(b"half a PNG")
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(plots.Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError):
        plots.plot_overlay(case["ct"], case["liver"], case["lesion"], target)
    assert target.read_bytes() == b"old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.png"]


def test_no_pyplot_figures_are_left_open(tmp_path, case):
    pyplot = sys.modules.get("matplotlib.pyplot")
    before = pyplot.get_fignums() if pyplot else None
    plots.plot_overlay(case["ct"], case["liver"], case["lesion"], tmp_path / "o.png")
    plots.plot_loss(history(), tmp_path / "l.png")
    if pyplot is None:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        assert pyplot.get_fignums() == before


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".JPG", b"\xff\xd8\xff"), (".jpeg", b"\xff\xd8\xff"),
                                           (".tif", b"II*\x00"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_a_picture_is_written_in_the_format_its_suffix_names(tmp_path, case, suffix, magic):
    path = plots.plot_overlay(case["ct"], case["liver"], case["lesion"], tmp_path / f"overlay{suffix}")
    assert path.read_bytes().startswith(magic)


def test_a_picture_format_no_writer_knows_is_refused_before_any_work(tmp_path, case):
    for name in ("overlay.bmp", "overlay", "overlay.nii.gz"):
        with pytest.raises(OutputError, match="unknown picture format"):
            plots.plot_overlay(case["ct"], case["liver"], case["lesion"], tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_home_gives_no_lines_from_matplotlib(tmp_path):
    """In a container with a read-only home, matplotlib logged two lines on the terminal that it had made
    a temporary settings folder; the pictures are drawn all the same, and now quietly."""
    import os
    import subprocess

    env = {key: value for key, value in os.environ.items()
           if key not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env["HOME"] = "/proc/self"  # no folder can be made there, even by root
    script = ("import sys, numpy as np; from LiverLesionSegLib import plots; "
              "from LiverLesionSegLib.volume import Volume; "
              "ct = Volume(np.zeros((1, 40, 40), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)); "
              "plots.plot_overlay(ct, None, None, sys.argv[1], slice_index=0)")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "overlay.png")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and (tmp_path / "overlay.png").stat().st_size > 0
