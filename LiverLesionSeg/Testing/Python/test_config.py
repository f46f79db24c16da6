"""Configuration: JSON round trip, clear refusals of unknown or wrong settings."""

import json

import pytest

from LiverLesionSegLib.cli import main
from LiverLesionSegLib.config import Config
from LiverLesionSegLib.errors import InputError


def test_json_round_trip_keeps_every_setting():
    config = Config()
    config.train.cycles = 7
    config.loss.bce_pos_weight = (2.0, 20.0)
    config.train.validate = ["3Dircadb1.1"]
    again = Config.from_dict(json.loads(config.to_json()))
    assert again == config
    assert again.loss.bce_pos_weight == (2.0, 20.0)
    config.preprocess.zoom, config.preprocess.liver_reference_hu = True, 100.0
    assert Config.from_dict(json.loads(config.to_json())).preprocess.liver_reference_hu == 100.0


def test_unknown_setting_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"train": {"cycels": 3}}))
    with pytest.raises(InputError, match=r"config.json: unknown setting 'train.cycels'"):
        Config.from_json_file(path)


def test_an_empty_settings_file_is_told_so(tmp_path):
    """It was "cannot read the configuration (Expecting value: line 1 column 1 (char 0))"."""
    (tmp_path / "config.json").write_bytes(b"")
    with pytest.raises(InputError, match=r"config\.json: is an empty file \(0 bytes\)"):
        Config.from_json_file(tmp_path / "config.json")


@pytest.mark.parametrize("options, named", [
    ([], "{config}: precision must be"),  # the file's own setting
    (["--weight-decay", "-1"], "{config} with --weight-decay: train.weight_decay"),  # an option on top of it
])
def test_a_setting_that_cannot_work_names_where_it_came_from(tmp_path, capsys, options, named):
    """`train --config FILE`: a setting of the right type that cannot work names the file (and the
    options given with it), as a setting of the wrong type does; before any case is read."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"train": {"precision": "fp8" if not options else "auto"}}))
    assert main(["train", str(tmp_path / "no case"), "--config", str(config), *options,
                 "--out", str(tmp_path / "run"), "--progress", "none"]) == 3
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("liverlesionseg: error: " + named.format(config=config))


def test_wrong_type_is_named():
    with pytest.raises(InputError, match="setting 'train.cycles' should be int"):
        Config.from_dict({"train": {"cycles": "three"}})
    with pytest.raises(InputError, match="should have 2 values"):
        Config.from_dict({"loss": {"bce_pos_weight": [1.0]}})


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_setting_that_is_not_a_finite_number_is_named(value):
    """JSON reads NaN and Infinity: a checkpoint's inference.liver_neck_mm of Infinity was an internal
    error ("cannot convert float NaN to integer"), found by `damage_inputs.py --kind checkpoint`."""
    with pytest.raises(InputError, match=r"setting 'inference\.liver_neck_mm' should be a finite number, got"):
        Config.from_dict({"inference": {"liver_neck_mm": value}})


@pytest.mark.parametrize("section, key, value, message", [
    ("preprocess", "hu_max", -500.0, "hu_min must be below hu_max"),
    ("preprocess", "size", 100, "multiple of 32"),
    ("train", "cycles", 0, "cycles, epochs_per_cycle and validate_every"),
    ("train", "validate_every", 0, "validate_every must be 1 or more"),  # a division by zero in training
    ("train", "weight_decay", -1.0, "weight_decay"),  # was an internal error in the optimiser
    ("train", "weight_decay", float("nan"), "weight_decay"),
    ("train", "seed", -1, "seed"),  # a generator's seed cannot be negative: was an internal error
    ("train", "seed", 2 ** 32, "seed"),
    ("train", "seed", 1.5, "seed"),
    ("augment", "flip_lr", 1.5, "probabilities"),
    ("inference", "lesion_threshold", 1.0, "thresholds"),
    ("inference", "lesion_grow_threshold", 0.0, "lesion_grow_threshold"),
    ("inference", "min_lesion_peak_probability", 1.5, "min_lesion_peak_probability"),
    ("inference", "liver_neck_mm", -1.0, "liver_neck_mm"),
    ("inference", "liver_neck_mm", float("inf"), "liver_neck_mm"),  # found by `damage_inputs.py --kind checkpoint`
    ("inference", "lesion_grow_smoothing_mm", float("inf"), "lesion_grow_smoothing_mm"),
    ("inference", "lesion_grow_smoothing_mm", -1.0, "lesion_grow_smoothing_mm"),
    ("inference", "lesion_grow_beyond_liver_mm", -1.0, "lesion_grow_beyond_liver_mm"),
    ("inference", "lesion_grow_beyond_liver_mm", float("nan"), "lesion_grow_beyond_liver_mm"),
    ("preprocess", "liver_reference_hu", 100.0, "needs preprocess.zoom"),
    ("augment", "mass_density", (0.6, 0.3), "mass_density"),
    ("augment", "synthetic_halo_share", 1.5, "probabilities"),
    ("preprocess", "context_mm", 0.0, "context_mm"),
    ("preprocess", "context_mm", float("inf"), "context_mm"),
    ("preprocess", "context_mm", 1e30, "at most 20 mm"),  # found by `damage_inputs.py --kind checkpoint`
    ("preprocess", "hu_max", 1e30, "within -2000 to 4000 HU"),
    ("preprocess", "hu_min", float("-inf"), "within -2000 to 4000 HU"),
    ("preprocess", "zoom_margin_mm", float("inf"), "zoom_margin_mm at most 200 mm"),
    ("augment", "synthetic_halo_rim", (0.6, -0.5), "synthetic_halo_rim"),
    ("augment", "synthetic_halo_rim", (-1.5, 0.5), "synthetic_halo_rim"),
    ("augment", "mirrored_lesions", 1.5, "probabilities"),
    ("augment", "pasted_lesions", -0.1, "probabilities"),
    ("preprocess", "zoom_tiles", 2, "zoom_tiles"),  # without zoom
    ("preprocess", "zoom_tiles", 0, "zoom_tiles"),
    ("inference", "tile_weight", 1.5, "tile_weight"),
    ("augment", "mirrored_lesion_strength", (0.0, 1.0), "mirrored_lesion_strength"),
    ("augment", "mirrored_lesion_strength", (1.0, 0.5), "mirrored_lesion_strength"),
    ("inference", "min_liver_around_lesion", 1.5, "min_liver_around_lesion"),
    ("inference", "liver_around_lesion_mm", 0.0, "liver_around_lesion_mm"),
    ("inference", "min_lesion_median_hu", 5000.0, "min_lesion_median_hu"),
    ("inference", "min_lesion_median_hu", float("nan"), "min_lesion_median_hu"),
    ("inference", "min_lesion_contrast_hu", -1.0, "min_lesion_contrast_hu"),
    ("inference", "liver_edge_mm", -1.0, "liver_edge_mm"),
    ("inference", "liver_edge_mm", float("inf"), "liver_edge_mm"),
    ("inference", "min_lesion_contrast_hu", float("nan"), "min_lesion_contrast_hu"),
    ("inference", "max_lesion_gas_mm3", -1.0, "max_lesion_gas_mm3"),
    ("inference", "max_lesion_gas_mm3", float("nan"), "max_lesion_gas_mm3"),
])
def test_validated_refuses_settings_that_cannot_work(section, key, value, message):
    config = Config()
    setattr(getattr(config, section), key, value)
    with pytest.raises(InputError, match=message):
        config.validated()


@pytest.mark.parametrize("value", [float("nan"), 1e30, -1000.0])
def test_a_liver_reference_outside_a_livers_values_is_refused(value):
    config = Config()
    config.preprocess.zoom, config.preprocess.liver_reference_hu = True, value
    with pytest.raises(InputError, match="liver_reference_hu must lie within -200 to 400 HU"):
        config.validated()


def test_defaults_are_valid():
    assert Config().validated().preprocess.in_channels == 1


def test_a_loss_of_no_terms_is_refused():
    """All three loss weights 0: the loss is 0 at every step and a model that learnt nothing is written."""
    config = Config()
    config.loss.bce_weight = config.loss.dice_weight = config.loss.tversky_weight = 0.0
    with pytest.raises(InputError, match="must not all be 0"):
        config.validated()
    config.loss.dice_weight = 1.0
    config.validated()


def test_a_section_that_is_no_object_is_named_as_written(tmp_path):
    (tmp_path / "settings.json").write_text('{"train": 5}')
    with pytest.raises(InputError, match=r"settings\.json: 'train' should be an object"):
        Config.from_json_file(tmp_path / "settings.json")
