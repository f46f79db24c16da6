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

Finished folds are kept in --out and skipped when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))
sys.path.insert(0, str(REPO / "benchmarks"))

from LiverLesionSegLib.checkpoint import load_checkpoint  # noqa: E402
from LiverLesionSegLib.dataset import prepare_case  # noqa: E402
from LiverLesionSegLib.infer import segment_volume  # noqa: E402
from LiverLesionSegLib.metrics import CaseMetrics, evaluate_case, summarise  # noqa: E402
from LiverLesionSegLib.model import choose_device  # noqa: E402
from LiverLesionSegLib.recipes import RECIPES, recipe  # noqa: E402
from LiverLesionSegLib.train import train  # noqa: E402

TUMOUR_FREE = "3Dircadb1.7"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LIVERLESIONSEG_DATA", "") or
                                                          Path.home() / ".cache" / "liverlesionseg" / "data"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "accuracy")
    parser.add_argument("--recipes", default="notebook,bundled")
    parser.add_argument("--folds", default="", help="comma-separated held-out case names (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every recipe's epochs per cycle")
    args = parser.parse_args()

    from LiverLesionSegLib.io.cases import find_cases, load_case  # DICOM readers: not needed by ablation.py's use

    device = choose_device(args.device)
    refs = [r for r in find_cases([args.data]) if r.name != "HCC_006"]
    cases = {r.name: load_case(r) for r in refs}
    held_out = [n for n in cases if not args.folds or n in args.folds.split(",")]
    table = {}
    for name in args.recipes.split(","):
        results = [run_fold(name, test, cases, args, device) for test in held_out]
        table[name] = summary(results)
    scale = f" --epochs-scale {args.epochs_scale}" if args.epochs_scale != 1 else ""
    text = markdown(table, f"python benchmarks/accuracy.py --recipes {args.recipes}{scale}", "Leave-one-case-out")
    print(text)
    (args.out / "summary.md").write_text(text)
    (args.out / "summary.json").write_text(json.dumps(table, indent=1))
    return 0


def run_fold(recipe_name: str, test: str, cases: dict, args, device) -> CaseMetrics:
    folder = args.out / recipe_name / f"test-{test}"
    result_file = folder / "metrics.json"
    if result_file.exists():
        return CaseMetrics(**json.loads(result_file.read_text()))
    folder.mkdir(parents=True, exist_ok=True)
    config = recipe_or_variant(recipe_name)
    config.train.epochs_per_cycle = max(1, round(config.train.epochs_per_cycle * args.epochs_scale))
    started = time.perf_counter()
    if not (folder / "model.safetensors").exists():
        train_cases = [prepare_case(c, config.preprocess) for n, c in cases.items() if n != test]
        train(train_cases, [], config, folder, device, download_weights=False)
    train_seconds = time.perf_counter() - started
    checkpoint = load_checkpoint(folder / "model.safetensors", device)
    case = cases[test]
    result = segment_volume(case.ct, checkpoint, None, device)
    metrics = evaluate_case(test, result.liver.array, result.lesion.array, case.liver.array | case.lesion.array,
                            case.lesion.array, case.ct.spacing)
    record = metrics.to_dict()
    result_file.write_text(json.dumps(record, indent=1))
    print(f"{recipe_name} / {test}: lesion Dice {metrics.lesion_dice:.3f}, liver Dice {metrics.liver_dice:.3f}, "
          f"found {metrics.detected_lesions}/{metrics.true_lesions}, {metrics.pred_false_positive_lesions} false, "
          f"trained in {train_seconds / 60:.1f} min", flush=True)
    return metrics


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
