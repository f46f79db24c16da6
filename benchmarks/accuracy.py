"""Cross-validated accuracy of the training recipes, on the same folds.

Leave-one-case-out over the labelled shared cases: for each recipe and each case, a model is
trained on the other cases (no validation: the held-out case is never used to choose anything)
and measured on the held-out case in 3-D. Prints and writes a table per recipe: per-case lesion and
liver Dice, global lesion Dice, pooled lesion-wise recall and precision, and the false-positive
lesion volume on the tumour-free case 3Dircadb1.7.

    python benchmarks/accuracy.py                       # both recipes, every fold (hours on a CPU)
    python benchmarks/accuracy.py --recipes bundled --device cuda
    python benchmarks/accuracy.py --epochs-scale 0.1    # a quick, much weaker run
    python benchmarks/accuracy.py --recipes bundled,dice-bce   # a variant from benchmarks/ablation.py
    python benchmarks/accuracy.py --recipes bundled --seeds 0,1,2   # how much is the seed's doing
    python benchmarks/accuracy.py --recipes bundled --snapshots 3,4  # also: cycles 3 and 4 averaged
    python benchmarks/accuracy.py --recipes bundled --weight-average 2,3,4  # also: their weights averaged
    python benchmarks/accuracy.py --recipes bundled --seeds 0,1,2 --seed-ensemble  # also: the seeds averaged
    python benchmarks/accuracy.py --recipes bundled --seeds 0,1,2 --seed-vote  # also: the seeds' majority vote
    python benchmarks/accuracy.py --recipes bundled --sweep min_lesion_median_hu=null,10,20  # same models
    python benchmarks/accuracy.py --recipes bundled --extra-train DIR  # more training cases (row bundled+DIR)

Cases under --extra-train are added to every fold's training set and never held out; one named
after a held-out case and a dash (`RadCTTACEomics_0697-AP`, another series of that patient) is left
out of that case's fold, so no fold trains on the patient it is measured on. The training cases are
prepared once for a row's folds, the extra ones read one at a time, their slices kept on disk in
OUT/ROW/.training-slices while the row runs (a hundred CTs at full resolution would not fit in memory).

Finished folds are kept in --out and skipped when the command is run again.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))
sys.path.insert(0, str(REPO / "benchmarks"))

from LiverLesionSegLib.checkpoint import load_checkpoint, read_metadata  # noqa: E402
from LiverLesionSegLib.config import InferenceConfig  # noqa: E402
from LiverLesionSegLib.errors import InputError  # noqa: E402
from LiverLesionSegLib.augment import augment_batch  # noqa: E402
from LiverLesionSegLib.ensemble import segment_with_models  # noqa: E402
from LiverLesionSegLib.dataset import PreparedCase, SliceSet, epoch_order, prepare_training_case  # noqa: E402
from LiverLesionSegLib.infer import segment_volume  # noqa: E402
from LiverLesionSegLib.metrics import CaseMetrics, evaluate_case, summarise  # noqa: E402
from LiverLesionSegLib.model import choose_device  # noqa: E402
from LiverLesionSegLib.recipes import RECIPES, recipe  # noqa: E402
from LiverLesionSegLib.resources import unpacked_cases_dir  # noqa: E402
from LiverLesionSegLib.slice_store import SliceStore, slices_on_disk  # noqa: E402
from LiverLesionSegLib.train import cycle_checkpoint_name, train  # noqa: E402

TUMOUR_FREE = "3Dircadb1.7"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=unpacked_cases_dir())
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "accuracy")
    parser.add_argument("--recipes", default="notebook,bundled")
    parser.add_argument("--folds", default="", help="comma-separated held-out case names (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every recipe's epochs per cycle")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds: seed 0 is the recipe's row, "
                                                     "another seed N the row <recipe>-seedN")
    parser.add_argument("--snapshots", default="", help="comma-separated cycles: also measure each fold's models "
                                                        "at the end of these cycles, their probabilities averaged")
    parser.add_argument("--weight-average", default="",
                        help="comma-separated cycles: also measure each fold with one network whose weights are the "
                             "mean of its models' at the end of these cycles, its batch-norm statistics recomputed "
                             "on the fold's training slices (one cycle: the statistics alone)")
    parser.add_argument("--seed-ensemble", action="store_true",
                        help="with several --seeds: also measure each fold with its seeds' models, their "
                             "probabilities averaged (the row <recipe>-seeds-0-1-...)")
    parser.add_argument("--seed-vote", action="store_true",
                        help="with several --seeds: also measure each fold with its seeds' models' majority vote "
                             "(each segments the case with its clean-up rules; the row <recipe>-vote-seeds-0-1-...)")
    parser.add_argument("--sweep", default="", help="SETTING=V1,V2,...: also measure each fold's model with this "
                                                    "inference setting at each value (JSON: null, 10, true)")
    parser.add_argument("--extra-train", type=Path, default=None,
                        help="a folder of more labelled cases, added to every fold's training set but the fold of "
                             "their patient (a case named <held-out case>-...); rows are named <recipe>+<folder>")
    parser.add_argument("--summary", default="summary", help="name of the table files written to --out")
    args = parser.parse_args()

    from LiverLesionSegLib.io.cases import find_cases, load_case  # DICOM readers: not needed by ablation.py's use

    device = choose_device(args.device)
    refs = [r for r in find_cases([args.data]) if r.name != "HCC_006"]
    cases = {r.name: load_case(r) for r in refs}
    extra_refs = find_cases([args.extra_train]) if args.extra_train else []
    suffix = f"+{args.extra_train.name}" if args.extra_train else ""
    held_out = [n for n in cases if not args.folds or n in args.folds.split(",")]
    table = {}
    cycles = [int(c) for c in args.snapshots.split(",")] if args.snapshots else []
    averaged = [int(c) for c in args.weight_average.split(",")] if args.weight_average else []
    sweep = sweep_settings(args.sweep)
    seeds = [int(s) for s in args.seeds.split(",")]
    for row, name, seed in rows(args.recipes.split(","), seeds, suffix):
        config = recipe_or_variant(name)
        config.train.seed = seed
        config.train.epochs_per_cycle = max(1, round(config.train.epochs_per_cycle * args.epochs_scale))
        (args.out / row).mkdir(parents=True, exist_ok=True)
        with slices_on_disk(args.out / row) as store:
            shared, extra = prepared_training_cases(cases, extra_refs, config, store)
            table[row] = summary([run_fold(args.out / row / f"test-{test}", config, test, cases[test],
                                           training_cases(shared, extra, test), device) for test in held_out])
            if averaged:
                table[f"{row}-{weight_average_tag(averaged)}"] = summary(
                    [measure_weight_average(args.out / row / f"test-{test}", averaged, config, test,
                                            training_cases(shared, extra, test), cases[test], device)
                     for test in held_out])
        if cycles:
            table[f"{row}-{snapshot_tag(cycles)}"] = summary(
                [measure_snapshots(args.out / row / f"test-{test}", cycles, config.inference, test, cases[test],
                                   device) for test in held_out])
        for tag, changes in sweep:
            inference = dataclasses.replace(config, inference=dataclasses.replace(config.inference, **changes)
                                            ).validated(f"--sweep {tag}").inference
            table[f"{row}-{tag}"] = summary([measure_again(args.out / row / f"test-{test}", tag, inference, test,
                                                           cases[test], device) for test in held_out])
        if len(seeds) > 1 and seed == seeds[-1]:  # every seed's fold models are there now
            folders = {test: [args.out / seed_row / f"test-{test}" for seed_row, _, _ in rows([name], seeds, suffix)]
                       for test in held_out}
            if args.seed_ensemble:
                table[f"{name}{suffix}-{seed_ensemble_tag(seeds)}"] = summary(
                    [measure_seed_ensemble(folders[test], seeds, config.inference, test, cases[test], device)
                     for test in held_out])
            if args.seed_vote:
                table[f"{name}{suffix}-vote-{seed_ensemble_tag(seeds)}"] = summary(
                    [measure_seed_vote(folders[test], seeds, config.inference, test, cases[test], device)
                     for test in held_out])
    options = "".join(f" --{flag} {value}" for flag, value, default in (
        ("folds", args.folds, ""), ("seeds", args.seeds, "0"), ("snapshots", args.snapshots, ""),
        ("weight-average", args.weight_average, ""),
        ("sweep", args.sweep, ""),
        ("epochs-scale", args.epochs_scale, 1.0), ("extra-train", args.extra_train, None),
        ("summary", args.summary, "summary"))
        if value != default) + (" --seed-ensemble" if args.seed_ensemble else "") + (
        " --seed-vote" if args.seed_vote else "")
    text = markdown(table, f"python benchmarks/accuracy.py --recipes {args.recipes}{options}", "Leave-one-case-out")
    print(text)
    (args.out / f"{args.summary}.md").write_text(text)
    (args.out / f"{args.summary}.json").write_text(json.dumps(table, indent=1))
    return 0


def rows(recipes: list[str], seeds: list[int], suffix: str = "") -> list[tuple[str, str, int]]:
    """(row and folder name, recipe, training seed) for every recipe and seed, recipe by recipe;
    `suffix` follows the recipe's name (the extra training cases')."""
    return [(f"{name}{suffix}" if seed == 0 else f"{name}{suffix}-seed{seed}", name, seed)
            for name in recipes for seed in seeds]


def prepared_training_cases(cases: dict, extra_refs: list, config, store: SliceStore) -> tuple[dict, dict]:
    """The shared cases and the --extra-train cases on the network's grid for `config`, prepared once for
    every fold, their slices kept on disk by `store`. The extra cases are read one at a time: a dataset
    such as LiTS (131 CTs) would not fit in memory at full resolution, as the shared cases are held."""
    from LiverLesionSegLib.io.cases import load_case

    shared = {name: store.keep(prepare_training_case(case, config)) for name, case in cases.items()}
    extra = {ref.name: store.keep(prepare_training_case(load_case(ref), config)) for ref in extra_refs}
    return shared, extra


def training_cases(cases: dict, extra: dict, test: str) -> list:
    """Every case but `test`, and every extra case but those of `test`'s patient (named `test`-...)."""
    return ([c for n, c in cases.items() if n != test] +
            [c for n, c in extra.items() if not n.startswith(f"{test}-")])


def run_fold(folder: Path, config, test: str, case, train_cases: list[PreparedCase], device) -> CaseMetrics:
    """One fold: trained on `train_cases` into `folder` (unless it holds a model), then measured on
    `case`, named `test` (unless measured with these inference settings already)."""
    stored = stored_fold_model(folder, config)

    def train_and_measure() -> CaseMetrics:
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if stored is None:
            train(train_cases, [], config, folder, device, download_weights=False)
        train_seconds = time.perf_counter() - started
        metrics = measure(load_checkpoint(folder / "model.safetensors", device), config.inference, test,
                          case, device)
        print(f"{folder.parent.name} / {test}: lesion Dice {metrics.lesion_dice:.3f}, "
              f"liver Dice {metrics.liver_dice:.3f}, found {metrics.detected_lesions}/{metrics.true_lesions}, "
              f"{metrics.pred_false_positive_lesions} false, "
              f"trained in {train_seconds / 60:.1f} min", flush=True)
        return metrics

    return stored_or_measured(folder / "metrics.json", config.inference, train_and_measure)


def stored_fold_model(folder: Path, config) -> Optional[Path]:
    """The fold's stored model, if it has one; refused if it was trained with other settings than
    `config`'s (a recipe changed since it was trained: its row would measure the old recipe)."""
    model = folder / "model.safetensors"
    if not model.exists():
        return None
    trained, _ = read_metadata(model)
    if trained.training_settings() != config.training_settings():
        raise InputError("was trained with other settings than its row's recipe", str(model),
                         "delete its folder to train it again, or give another --out")
    return model


def sweep_settings(text: str) -> list[tuple[str, dict]]:
    """'SETTING=V1,V2' -> [('SETTING-V1', {SETTING: V1}), ...], values read as JSON (null, 10, true)."""
    if not text:
        return []
    key, _, values = text.partition("=")
    if key not in {f.name for f in dataclasses.fields(InferenceConfig)} or not values:
        raise SystemExit(f"--sweep: '{text}' is not SETTING=V1,V2,... with an inference setting")
    return [(f"{key}-{value}", {key: json.loads(value)}) for value in values.split(",")]


def measure_again(folder: Path, tag: str, inference: InferenceConfig, test: str, case, device) -> CaseMetrics:
    """A trained fold's model measured with other inference settings (stored apart, under `tag`)."""
    return stored_or_measured(folder / f"metrics-{tag}.json", inference, lambda: measure(
        load_checkpoint(folder / "model.safetensors", device), inference, test, case, device))


def measure_snapshots(folder: Path, cycles: list[int], inference: InferenceConfig, test: str, case,
                      device) -> CaseMetrics:
    """A fold measured with the mean of its models' probabilities at the end of `cycles` (a snapshot
    ensemble: the only ensemble of one training that leave-one-case-out can measure honestly, since
    the other folds' models have seen the held-out case)."""
    return measure_mean_of([folder / cycle_checkpoint_name(c) for c in cycles],
                           folder / f"metrics-{snapshot_tag(cycles)}.json", inference, test, case, device)


def measure_weight_average(folder: Path, cycles: list[int], config, test: str, train_cases: list[PreparedCase],
                           case, device) -> CaseMetrics:
    """A fold measured with one network whose weights are the mean of its models' at the end of
    `cycles` (stochastic weight averaging over the cycles' ends: an ensemble at the cost of one
    network), its batch-norm statistics recomputed on `train_cases` (what the fold trained on)."""
    def average_and_measure() -> CaseMetrics:
        checkpoints = [load_checkpoint(folder / cycle_checkpoint_name(c), device) for c in cycles]
        network = averaged_network([c.network for c in checkpoints])
        recompute_batch_norm(network, SliceSet(train_cases), config, device)
        return measure(dataclasses.replace(checkpoints[-1], network=network), config.inference, test, case, device)

    return stored_or_measured(folder / f"metrics-{weight_average_tag(cycles)}.json", config.inference,
                              average_and_measure)


def averaged_network(networks: list[torch.nn.Module]) -> torch.nn.Module:
    """One network of the same architecture whose weights are the mean of `networks`' (counters, such
    as batch norm's, from the last)."""
    states = [n.state_dict() for n in networks]
    mean = {key: torch.stack([s[key].float() for s in states]).mean(0).to(value.dtype)
            if value.is_floating_point() else value for key, value in states[-1].items()}
    network = copy.deepcopy(networks[-1])
    network.load_state_dict(mean)
    return network


def recompute_batch_norm(network: torch.nn.Module, slices: SliceSet, config, device) -> None:
    """Batch-norm statistics as the plain mean over one epoch of training batches (augmented, as in
    training) instead of the running average training left: averaged weights need their own, and
    the running average weighs the last steps most."""
    norms = [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative mean
    network.to(device).train()
    order = epoch_order(slices, config.train, np.random.default_rng([config.train.seed, 0]))
    generator = torch.Generator().manual_seed(config.train.seed)
    size = config.train.batch_size
    with torch.no_grad():
        for start in range(0, len(order), size):
            x, y = slices.batch(order[start:start + size], config.preprocess)
            x, _ = augment_batch(x, y, config.augment, generator)
            network(x.to(device).contiguous(memory_format=torch.channels_last))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    network.eval()


def weight_average_tag(cycles: list[int]) -> str:
    return "weights-" + "-".join(map(str, cycles))


def measure_seed_ensemble(folders: list[Path], seeds: list[int], inference: InferenceConfig, test: str, case,
                          device) -> CaseMetrics:
    """A fold measured with the mean of the probabilities of its models trained with each of `seeds`
    (in `folders`, in that order): what an ensemble of training seeds gains over one seed, honestly,
    since none of them saw the held-out case. Stored in the first seed's folder."""
    return measure_mean_of([folder / "model.safetensors" for folder in folders],
                           folders[0] / f"metrics-{seed_ensemble_tag(seeds)}.json", inference, test, case, device)


def measure_seed_vote(folders: list[Path], seeds: list[int], inference: InferenceConfig, test: str, case,
                      device) -> CaseMetrics:
    """A fold measured with the majority vote of its seeds' models (in `folders`), each segmenting the
    case with `inference` (ensemble.majority_vote). Stored in the first seed's folder."""
    def measure_vote() -> CaseMetrics:
        checkpoints = [load_checkpoint(folder / "model.safetensors", device) for folder in folders]
        for checkpoint in checkpoints:
            checkpoint.config.inference = inference
        return scored(segment_with_models(case.ct, checkpoints, device), test, case)

    return stored_or_measured(folders[0] / f"metrics-vote-{seed_ensemble_tag(seeds)}.json", inference, measure_vote)


def measure_mean_of(models: list[Path], result_file: Path, inference: InferenceConfig, test: str, case,
                    device) -> CaseMetrics:
    """The held-out case measured with the mean of `models`' probabilities (stored in `result_file`)."""
    def measure_ensemble() -> CaseMetrics:
        checkpoints = [load_checkpoint(model, device) for model in models]
        ensemble = MeanProbability([c.network for c in checkpoints]).eval()
        return measure(dataclasses.replace(checkpoints[0], network=ensemble), inference, test, case, device)

    return stored_or_measured(result_file, inference, measure_ensemble)


def seed_ensemble_tag(seeds: list[int]) -> str:
    return "seeds-" + "-".join(map(str, seeds))


def stored_or_measured(result_file: Path, inference: InferenceConfig,
                       measure_now: Callable[[], CaseMetrics]) -> CaseMetrics:
    """The metrics stored in `result_file` for these inference settings, or `measure_now()`'s, then stored."""
    metrics = stored_metrics(result_file, inference)
    if metrics is None:
        metrics = measure_now()
        store_metrics(result_file, inference, metrics)
    return metrics


def stored_metrics(result_file: Path, inference: InferenceConfig) -> Optional[CaseMetrics]:
    """A fold's stored metrics, if they were measured with these inference settings (a recipe's
    clean-up can change after its models were trained: the fold is then measured again)."""
    if not result_file.exists():
        return None
    stored = json.loads(result_file.read_text())
    if stored.pop("inference", None) != dataclasses.asdict(inference):
        return None
    return CaseMetrics(**stored)


def store_metrics(result_file: Path, inference: InferenceConfig, metrics: CaseMetrics) -> None:
    result_file.write_text(json.dumps({"inference": dataclasses.asdict(inference), **metrics.to_dict()}, indent=1))


def snapshot_tag(cycles: list[int]) -> str:
    return "snapshots-" + "-".join(map(str, cycles))


def measure(checkpoint, inference: InferenceConfig, test: str, case, device) -> CaseMetrics:
    """The held-out case segmented with `checkpoint` and the recipe's inference settings, measured in
    3-D against its masks."""
    return scored(segment_volume(case.ct, checkpoint, inference, device), test, case)


def scored(result, test: str, case) -> CaseMetrics:
    """A segmentation of the held-out case measured in 3-D against its masks."""
    return evaluate_case(test, result.liver.array, result.lesion.array, case.liver.array | case.lesion.array,
                         case.lesion.array, case.ct.spacing)


class MeanProbability(torch.nn.Module):
    """Networks whose sigmoid probabilities are averaged; returns the logits of the mean, as the
    inference code expects logits."""

    def __init__(self, networks: list[torch.nn.Module]):
        super().__init__()
        self.networks = torch.nn.ModuleList(networks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.stack([torch.sigmoid(n(x).float()) for n in self.networks]).mean(0)
        return torch.logit(mean.clamp(1e-6, 1 - 1e-6))


def recipe_or_variant(name: str):
    """A training recipe, or one of benchmarks/ablation.py's variants of the bundled one."""
    if name in RECIPES:
        return recipe(name)
    from ablation import TRAINED, variant_config

    if name in TRAINED:
        return variant_config(name)
    return recipe(name)  # refuses it, naming the recipes there are


def summary(results: list[CaseMetrics]) -> dict:
    overall = summarise(results)
    per_case = {m.name: {"lesion_dice": m.lesion_dice, "liver_dice": m.liver_dice,
                         "fp_lesion_ml": m.fp_lesion_volume_ml, "found": f"{m.detected_lesions}/{m.true_lesions}",
                         "false_lesions": m.pred_false_positive_lesions} for m in results}
    with_lesions = [m.lesion_dice for m in results if m.true_lesions]
    return {"per_case": per_case, "lesion_dice_mean_cases_with_lesions": sum(with_lesions) / len(with_lesions)
            if with_lesions else None, "summary": overall}


def markdown(table: dict, command: str, folds: str) -> str:
    names = list(dict.fromkeys(n for row in table.values() for n in row["per_case"]))
    lines = ["| recipe | " + " | ".join(f"{n} lesion / liver Dice" for n in names) +
             " | mean lesion Dice (cases with lesions) | global lesion Dice | mean liver Dice | lesion recall | "
             "lesion precision | false lesion on 3Dircadb1.7 (mL) |",
             "|---" * (len(names) + 7) + "|"]
    for name, row in table.items():
        s = row["summary"]
        cells = [f"{row['per_case'][n]['lesion_dice']:.3f} / {row['per_case'][n]['liver_dice']:.3f}"
                 if n in row["per_case"] else "-" for n in names]
        fp = row["per_case"].get(TUMOUR_FREE, {}).get("fp_lesion_ml")
        cells += [_f(row["lesion_dice_mean_cases_with_lesions"]), _f(s["lesion_dice_global"]),
                  _f(s["liver_dice_mean"]), _f(s["lesion_recall"]), _f(s["lesion_precision"]),
                  "-" if fp is None else f"{fp:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{folds}; made by `{command}`.")
    return "\n".join(lines) + "\n"


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
