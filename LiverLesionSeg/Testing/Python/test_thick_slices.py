"""Training on thicker reconstructions of each case (`augment.thick_slices_mm`): the case's slices
averaged in groups, as a CT reconstructed that thick shows it, seen beside the case as it is."""

import numpy as np
import pytest

from LiverLesionSegLib.cli import build_parser
from LiverLesionSegLib.commands.train import build_config
from LiverLesionSegLib.config import Config
from LiverLesionSegLib.dataset import SliceSet, prepare_case, prepare_training_case
from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.preprocess import average_slice_groups
from LiverLesionSegLib.recipes import bundled


def test_slices_are_averaged_in_whole_groups_and_the_incomplete_group_left_out():
    array = np.arange(7, dtype=np.int16)[:, None, None] * np.ones((1, 2, 3), np.int16)
    thick = average_slice_groups(array, 3)
    assert thick.dtype == np.float32 and thick.shape == (2, 2, 3)
    assert thick[:, 0, 0].tolist() == [1.0, 4.0]  # (0+1+2)/3, (3+4+5)/3; slice 6 left out


@pytest.fixture(scope="module")
def thin_case(data_dir):
    """3Dircadb1.17: 1.6 mm slices, with lesions."""
    return load_case(find_cases([data_dir / "ircadb" / "3Dircadb1.17"])[0])


def _config(thickness_mm):
    config = bundled()
    config.augment.thick_slices_mm = thickness_mm
    return config


def test_off_the_training_case_is_the_case_as_it_is(thin_case):
    plain = prepare_case(thin_case, bundled().preprocess)
    training = prepare_training_case(thin_case, _config(None))
    assert len(training.views) == len(plain.views) == 2  # whole slices and the liver's box
    for a, b in zip(training.views, plain.views):
        assert np.array_equal(a.stack, b.stack) and np.array_equal(a.targets, b.targets)


def test_a_thin_case_is_also_seen_as_a_reconstruction_about_that_thick(thin_case):
    config = _config(5.0)
    prepared = prepare_training_case(thin_case, config)
    thin, thick = prepared.views[:2], prepared.views[2:]
    assert len(thick) == 2  # whole slices and the liver's box, at 3 x 1.6 = 4.8 mm
    slices = thin_case.ct.shape[0]
    assert len(thick[0].stack) == slices // 3
    assert thick[0].slice_spacing_mm == pytest.approx(3 * thin[0].slice_spacing_mm)
    # Half of a group inside is inside: the liver keeps its volume, to the slices' share of a boundary.
    thin_liver = (thin[0].targets[:, 0].astype(float) / 255).sum()
    thick_liver = (thick[0].targets[:, 0].astype(float) / 255).sum() * 3
    assert thick_liver == pytest.approx(thin_liver, rel=0.05)
    # A thick slice is its group of thin ones averaged (in HU, before the window clips): far closer
    # to the group's mean than any one of them is.
    group = thin[0].stack[3 * 20:3 * 21].astype(float)
    mean = group.mean(axis=0)
    assert np.abs(thick[0].stack[20] - mean).mean() < 0.5 * np.abs(group[1] - mean).mean()
    # The thick views are drawn in training, with the neighbours at their own spacing.
    slice_set = SliceSet([prepared])
    flat = len(slice_set) - 1  # the last slice of the last (thick) view
    images, targets = slice_set.batch(np.array([flat]), config.preprocess)
    assert images.shape == (1, 3, 128, 128) and targets.shape == (1, 2, 128, 128)


def test_no_thick_view_where_the_case_is_that_thick_already_or_augmentation_is_off(data_dir, thin_case):
    thick_case = load_case(find_cases([data_dir / "tace" / "RadCTTACEomics_0697"])[0])  # 5 mm slices
    assert len(prepare_training_case(thick_case, _config(5.0)).views) == 2
    config = _config(5.0)
    config.augment.enabled = False
    assert len(prepare_training_case(thin_case, config).views) == 2


@pytest.mark.parametrize("value", [0.0, -5.0, float("nan")])
def test_a_thickness_that_cannot_be_is_refused_naming_the_setting(value):
    config = Config()
    config.augment.thick_slices_mm = value
    with pytest.raises(InputError, match="augment.thick_slices_mm"):
        config.validated()


@pytest.mark.parametrize("option, expected", [([], 4.0), (["--thick-slices-mm", "5"], 5.0),
                                              (["--thick-slices-mm", "0"], None)])
def test_the_train_command_sets_it_and_0_turns_it_off(option, expected, tmp_path):
    start = Config()
    start.augment.thick_slices_mm = 4.0
    settings = tmp_path / "config.json"
    settings.write_text(start.to_json())
    args = build_parser().parse_args(["train", "case", "--out", "run", "--config", str(settings)] + option)
    assert build_config(args, None, None).augment.thick_slices_mm == expected
