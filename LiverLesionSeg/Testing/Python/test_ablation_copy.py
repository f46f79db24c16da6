"""The ablation benchmark's compact copy of a case (`benchmarks/ablation.py pack`) gives the network
the input it would get from the full case, within one grey level, with masks and geometry to match."""

import sys
from pathlib import Path

import numpy as np

from LiverLesionSegLib.config import PreprocessConfig
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.preprocess import prepare_ct
from LiverLesionSegLib.volume import to_axial_lps

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import ablation  # noqa: E402

CASE = "tace/RadCTTACEomics_0697"


def test_half_resolution_copy_keeps_the_network_input_masks_and_spacing(tmp_path, data_dir):
    ablation.pack(data_dir / CASE, tmp_path / "cases.npz")
    copy = ablation.unpack(tmp_path / "cases.npz")["RadCTTACEomics_0697"]
    case = load_case(find_cases([data_dir / CASE])[0])
    ct = to_axial_lps(case.ct)[0]
    config = PreprocessConfig()
    difference = np.abs(prepare_ct(ct.array, config).astype(int) - prepare_ct(copy.ct.array, config).astype(int))
    assert difference.max() <= 1
    assert copy.ct.shape == (ct.shape[0], ct.shape[1] // 2, ct.shape[2] // 2)
    assert np.allclose(copy.ct.spacing, (ct.spacing[0] * 2, ct.spacing[1] * 2, ct.spacing[2]))
    for copied, full in ((copy.lesion.array, case.lesion.array), (copy.liver.array, case.liver.array)):
        assert abs(4 * int(copied.sum()) - int(full.sum())) <= 0.25 * full.sum()


def test_every_variant_is_the_base_recipe_with_one_change_and_one_is_the_third_bundled():
    base = ablation.base_recipe().to_dict()
    for name in list(ablation.TRAINED) + list(ablation.INFERENCE_ONLY):
        changed = ablation.variant_config(name).to_dict()
        differing = {section for section in base if base[section] != changed[section]}
        assert (name == "bundled-v1") == (not differing), name
    todays = ablation.variant_config("dice-bce-liver-relative-masses").to_dict()
    recipe = ablation.variant_config("bundled-v3").to_dict()
    # trained as the third bundled recipe; its models are measured with the clean-up of their day
    assert todays.pop("inference") != recipe.pop("inference") and todays == recipe
    for name in ("bundled-longer", "bundled-5-slices", "bundled-threshold-0.7"):
        changed = ablation.variant_config(name).to_dict()
        assert sum(changed[s] != todays[s] for s in todays) == (name != "bundled-threshold-0.7"), name


def test_a_seed_suffix_changes_the_seed_alone():
    assert ablation.split_seed("bundled-longer-seed2") == ("bundled-longer", 2)
    assert ablation.split_seed("dice-bce") == ("dice-bce", 0)
    seeded, plain = (ablation.variant_config(n).to_dict() for n in ("bundled-longer-seed2", "bundled-longer"))
    assert seeded["train"].pop("seed") == 2 and plain["train"].pop("seed") == 0 and seeded == plain


def test_another_window_keeps_the_augmentations_sizes_in_hu():
    from LiverLesionSegLib.recipes import bundled

    todays, narrow = bundled(), ablation.variant_config("bundled-narrow-window")
    assert (narrow.preprocess.hu_min, narrow.preprocess.hu_max) == (-20.0, 200.0)

    def width(c):
        return c.preprocess.hu_max - c.preprocess.hu_min

    for name in ("synthetic_hypodense", "synthetic_hyperdense"):  # contrasts: window units x width = HU
        assert np.allclose(np.multiply(getattr(narrow.augment, name), width(narrow)),
                           np.multiply(getattr(todays.augment, name), width(todays))), name
    for name in ("brightness", "noise", "enhancement_floor", "fatty_liver_drop"):
        assert np.isclose(getattr(narrow.augment, name) * width(narrow), getattr(todays.augment, name) * width(todays))
    # densities: window levels -> the same HU
    assert np.allclose(narrow.preprocess.hu_min + np.multiply(narrow.augment.mass_density, width(narrow)),
                       todays.preprocess.hu_min + np.multiply(todays.augment.mass_density, width(todays)))
    everything_else = narrow.to_dict()
    for section, fields in (("preprocess", ("hu_min", "hu_max")), ("augment", (
            "synthetic_hypodense", "synthetic_hyperdense", "brightness", "noise", "enhancement_floor",
            "fatty_liver_drop", "mass_density"))):
        for field in fields:
            everything_else[section][field] = todays.to_dict()[section][field]
    assert everything_else == todays.to_dict()
