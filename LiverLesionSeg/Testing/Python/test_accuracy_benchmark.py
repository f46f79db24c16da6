"""The accuracy benchmark's runs: one row per recipe and seed, and the recipes and variants it
accepts by name."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import bad_inputs
from LiverLesionSegLib.errors import InputError
from LiverLesionSegLib.io.cases import find_cases, load_case
from LiverLesionSegLib.recipes import bundled, recipe
from LiverLesionSegLib.slice_store import slices_on_disk

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import accuracy  # noqa: E402


def test_seed_zero_keeps_the_recipes_row_and_other_seeds_get_their_own():
    assert accuracy.rows(["bundled", "notebook"], [0, 2]) == [
        ("bundled", "bundled", 0), ("bundled-seed2", "bundled", 2),
        ("notebook", "notebook", 0), ("notebook-seed2", "notebook", 2)]


def test_extra_training_cases_get_rows_of_their_own_and_stay_out_of_their_patients_fold():
    assert accuracy.rows(["bundled"], [0, 1], "+phases") == [("bundled+phases", "bundled", 0),
                                                           ("bundled+phases-seed1", "bundled", 1)]
    cases = {"3Dircadb1.1": "a", "3Dircadb1.17": "b", "RadCTTACEomics_0697": "c"}
    extra = {"RadCTTACEomics_0697-AP": "d", "3Dircadb1.1-late": "e"}
    assert accuracy.training_cases(cases, extra, "RadCTTACEomics_0697") == ["a", "b", "e"]
    # a case name that begins another's (3Dircadb1.1, 3Dircadb1.17) keeps only its own patient's out
    assert accuracy.training_cases(cases, extra, "3Dircadb1.1") == ["b", "c", "d"]
    assert accuracy.training_cases(cases, extra, "3Dircadb1.17") == ["a", "c", "d", "e"]
    assert accuracy.training_cases(cases, {}, "3Dircadb1.17") == ["a", "c"]


def test_recipes_and_ablation_variants_are_found_by_name_and_others_refused():
    assert accuracy.recipe_or_variant("bundled").to_dict() == bundled().to_dict()
    assert accuracy.recipe_or_variant("dice-bce").loss.tversky_weight == 0.0
    assert accuracy.recipe_or_variant("dice-bce").preprocess.liver_reference_hu is None
    # The third bundled recipe: today's, clean-up rules included, with the next slices as neighbours.
    v3 = accuracy.recipe_or_variant("bundled-v3")
    assert v3.preprocess.context_mm is None and bundled().preprocess.context_mm == 2.5
    v3.preprocess.context_mm = 2.5
    assert v3.to_dict() == bundled().to_dict()
    # One change each to it; the neighbours in mm made today's recipe.
    assert accuracy.recipe_or_variant("bundled-context-2.5mm").to_dict() == bundled().to_dict()
    halo = accuracy.recipe_or_variant("bundled-halo")
    assert halo.augment.synthetic_halo_share == 0.5
    halo.augment.synthetic_halo_share = 0.0
    assert halo.to_dict() == accuracy.recipe_or_variant("bundled-v3").to_dict()
    # ... and the `bundled-` variants that are not `bundled-v3`'s, one change to today's recipe.
    thick = accuracy.recipe_or_variant("bundled-thick-5mm")
    assert thick.augment.thick_slices_mm == 5.0
    thick.augment.thick_slices_mm = None
    assert thick.to_dict() == bundled().to_dict()
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


def test_a_sweep_names_its_rows_reads_json_values_and_refuses_unknown_settings():
    assert accuracy.sweep_settings("") == []
    assert accuracy.sweep_settings("min_lesion_median_hu=null,20") == [
        ("min_lesion_median_hu-null", {"min_lesion_median_hu": None}),
        ("min_lesion_median_hu-20", {"min_lesion_median_hu": 20})]
    with pytest.raises(SystemExit, match="inference setting"):
        accuracy.sweep_settings("learning_rate=0.1")
    with pytest.raises(SystemExit, match="inference setting"):
        accuracy.sweep_settings("min_lesion_median_hu")


def test_a_swept_fold_is_measured_with_its_settings_and_stored_apart(tmp_path, data_dir):
    """The fold's model measured again with a setting changed: the result is stored under the
    sweep's tag and read back only for the same settings."""
    import dataclasses

    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.resources import bundled_model_path

    ref = [r for r in find_cases([data_dir]) if r.name == "RadCTTACEomics_0697"][0]
    case = load_case(ref)
    (tmp_path / "model.safetensors").symlink_to(bundled_model_path())
    fluid_kept = dataclasses.replace(bundled().inference, min_lesion_median_hu=None)
    kept = accuracy.measure_again(tmp_path, "min_lesion_median_hu-null", fluid_kept, ref.name, case, "cpu")
    dropped = accuracy.measure_again(tmp_path, "min_lesion_median_hu-20", bundled().inference, ref.name, case, "cpu")
    assert kept.pred_lesion_volume_ml > dropped.pred_lesion_volume_ml  # the bundled model finds fluid there
    assert (tmp_path / "metrics-min_lesion_median_hu-null.json").exists()
    assert accuracy.stored_metrics(tmp_path / "metrics-min_lesion_median_hu-null.json", fluid_kept) == kept
    assert accuracy.stored_metrics(tmp_path / "metrics-min_lesion_median_hu-null.json", bundled().inference) is None


def test_a_stored_fold_model_is_reused_only_for_the_settings_it_was_trained_with(tmp_path):
    from LiverLesionSegLib.checkpoint import save_checkpoint

    config = bundled()
    assert accuracy.stored_fold_model(tmp_path, config) is None  # nothing trained yet
    save_checkpoint(tmp_path / "model.safetensors", torch.nn.Conv2d(3, 2, 1), config, {})
    assert accuracy.stored_fold_model(tmp_path, config) == tmp_path / "model.safetensors"
    config.inference.lesion_threshold = 0.7  # measured again, not trained again
    assert accuracy.stored_fold_model(tmp_path, config) == tmp_path / "model.safetensors"
    for section, setting, value in (("preprocess", "context_mm", 4.0), ("train", "seed", 3)):
        changed = bundled()
        setattr(getattr(changed, section), setting, value)
        with pytest.raises(InputError, match="trained with other settings than its row's recipe"):
            accuracy.stored_fold_model(tmp_path, changed)


def test_a_seed_ensemble_averages_the_seeds_models_and_is_stored_in_the_first_seeds_folder(tmp_path, data_dir):
    """Two seeds' fold models that are the same model: their mean probability is that model's, so the
    ensemble measures as the model alone, and so does their majority vote; the results are stored in
    the first seed's folder under the seeds' tag and read back for the same settings only."""
    from LiverLesionSegLib.checkpoint import load_checkpoint
    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.resources import bundled_model_path

    ref = [r for r in find_cases([data_dir]) if r.name == "RadCTTACEomics_0697"][0]
    case = load_case(ref)
    folders = [tmp_path / "bundled" / "test-x", tmp_path / "bundled-seed1" / "test-x"]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / "model.safetensors").symlink_to(bundled_model_path())
    settings = bundled().inference
    alone = accuracy.measure(load_checkpoint(bundled_model_path()), settings, ref.name, case, "cpu")
    ensemble = accuracy.measure_seed_ensemble(folders, [0, 1], settings, ref.name, case, "cpu")
    assert alone.pred_lesion_volume_ml > 0
    assert ensemble.lesion_dice == pytest.approx(alone.lesion_dice, abs=1e-3)
    assert ensemble.pred_lesion_volume_ml == pytest.approx(alone.pred_lesion_volume_ml, rel=1e-3)
    assert ensemble.liver_dice == pytest.approx(alone.liver_dice, abs=1e-4)
    stored = folders[0] / "metrics-seeds-0-1.json"
    assert stored.exists() and not (folders[1] / "metrics-seeds-0-1.json").exists()
    assert accuracy.stored_metrics(stored, settings) == ensemble

    vote = accuracy.measure_seed_vote(folders, [0, 1], settings, ref.name, case, "cpu")
    assert vote == alone  # two identical models vote for exactly what either draws
    stored = folders[0] / "metrics-vote-seeds-0-1.json"
    assert stored.exists() and accuracy.stored_metrics(stored, settings) == vote


def test_averaged_weights_are_the_mean_and_counters_come_from_the_last_network():
    torch.manual_seed(0)
    networks = [torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)) for _ in range(3)]
    for count, network in enumerate(networks):
        network[1].num_batches_tracked.fill_(count + 5)
    mean = accuracy.averaged_network(networks)
    expected = sum(n[0].weight for n in networks) / 3
    assert torch.allclose(mean[0].weight, expected) and not torch.allclose(mean[0].weight, networks[-1][0].weight)
    assert int(mean[1].num_batches_tracked) == 7
    assert all(n[0].weight is not mean[0].weight for n in networks)  # a new network, the others untouched


def test_batch_norm_statistics_are_recomputed_as_the_mean_over_the_training_slices():
    """A network that is one batch norm over the input: its recomputed running mean is the mean of
    the network inputs of the epoch's slices (equal batches), whatever it held before."""
    import numpy as np
    from LiverLesionSegLib.config import Config
    from LiverLesionSegLib.dataset import SliceSet, epoch_order, prepare_training_case
    from LiverLesionSegLib.volume import Case, Volume

    ct = np.full((10, 48, 48), -1000, np.int16)
    ct[2:8, 8:40, 8:40] = np.linspace(0, 200, 6, dtype=np.int16)[:, None, None]  # six liver slices, all unlike
    liver = (ct > -1000).astype(np.uint8)
    geometry = Volume(ct, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    case = Case("phantom", geometry, geometry.with_array(liver), geometry.with_array(np.zeros_like(liver)))
    config = Config()
    config.preprocess.size, config.augment.enabled = 32, False
    config.train.batch_size, config.train.background_fraction = 2, 0.0
    slices = SliceSet([prepare_training_case(case, config)])
    order = epoch_order(slices, config.train, np.random.default_rng(0))
    assert len(order) == 6
    inputs, _ = slices.batch(order, config.preprocess)

    network = torch.nn.Sequential(torch.nn.BatchNorm2d(1, momentum=0.3))
    network[0].running_mean.fill_(100.0)
    network[0].num_batches_tracked.fill_(1000)  # stale statistics of a long training
    accuracy.recompute_batch_norm(network, slices, config, "cpu")
    assert network[0].running_mean.item() == pytest.approx(inputs.mean().item(), abs=1e-5)
    assert network[0].momentum == 0.3 and not network.training


def test_the_training_cases_are_prepared_once_for_every_fold_with_their_slices_on_disk(data_dir, tmp_path):
    """A dataset under --extra-train is read one case at a time, its slices kept on disk: LiTS's 131 CTs
    held in memory at full resolution, as they were, would not fit a laptop."""
    small = bad_inputs.small_case(data_dir, tmp_path / "extra" / "3Dircadb1.17-crop")
    shutil.copytree(small, tmp_path / "extra" / "other")
    shared = {"3Dircadb1.17": load_case(find_cases([small])[0])}
    with slices_on_disk(tmp_path) as store:
        cases, extra = accuracy.prepared_training_cases(shared, find_cases([tmp_path / "extra"]),
                                                        recipe("bundled"), store)
        assert list(cases) == ["3Dircadb1.17"] and sorted(extra) == ["3Dircadb1.17-crop", "other"]
        prepared = [*cases.values(), *extra.values()]
        assert all(isinstance(a, np.memmap) for case in prepared for view in case.views for a in (view.stack,
                                                                                                   view.targets))
        assert len(cases["3Dircadb1.17"].views) == len(extra["other"].views) > 1  # the bundled recipe's views
        assert [c.name for c in accuracy.training_cases(cases, extra, "3Dircadb1.17")] == ["other"]
        assert store.bytes == sum(a.nbytes for case in prepared for view in case.views
                                  for a in (view.stack, view.targets))
