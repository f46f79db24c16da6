"""The accuracy benchmark's runs: one row per recipe and seed, and the recipes and variants it
accepts by name."""

import sys
from pathlib import Path

import pytest
import torch

from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.recipes import bundled

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import accuracy  # noqa: E402


def test_seed_zero_keeps_the_recipes_row_and_other_seeds_get_their_own():
    assert accuracy.rows(["bundled", "notebook"], [0, 2]) == [
        ("bundled", "bundled", 0), ("bundled-seed2", "bundled", 2),
        ("notebook", "notebook", 0), ("notebook-seed2", "notebook", 2)]


def test_recipes_and_ablation_variants_are_found_by_name_and_others_refused():
    assert accuracy.recipe_or_variant("bundled").to_dict() == bundled().to_dict()
    assert accuracy.recipe_or_variant("dice-bce").loss.tversky_weight == 0.0
    assert accuracy.recipe_or_variant("dice-bce").preprocess.liver_reference_hu is None
    with pytest.raises(InputError, match="unknown recipe 'bundeld'"):
        accuracy.recipe_or_variant("bundeld")


def test_a_snapshot_ensemble_averages_the_networks_probabilities():
    torch.manual_seed(0)
    networks = [torch.nn.Conv2d(3, 2, 3, padding=1) for _ in range(2)]
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        expected = (torch.sigmoid(networks[0](x)) + torch.sigmoid(networks[1](x))) / 2
        assert torch.allclose(torch.sigmoid(accuracy.MeanProbability(networks)(x)), expected, atol=1e-5)


def test_a_fold_is_measured_again_when_the_recipes_inference_settings_changed(tmp_path):
    import dataclasses

    from LiverLesionSegLib.metrics import evaluate_case

    truth = torch.zeros(4, 8, 8, dtype=torch.uint8).numpy()
    truth[1:3, 2:6, 2:6] = 1
    metrics = evaluate_case("case", truth, truth, truth, truth, (1.0, 1.0, 1.0))
    settings = bundled().inference
    accuracy.store_metrics(tmp_path / "metrics.json", settings, metrics)
    assert accuracy.stored_metrics(tmp_path / "metrics.json", settings) == metrics
    changed = dataclasses.replace(settings, min_liver_around_lesion=0.0)
    assert accuracy.stored_metrics(tmp_path / "metrics.json", changed) is None
    assert accuracy.stored_metrics(tmp_path / "missing.json", settings) is None
