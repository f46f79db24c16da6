"""The accuracy benchmark's fold models on their held-out cases re-sliced to other slice spacings.

Clinics reconstruct CT at anything from 0.6 to 5 mm; the shared cases have 1.6, 2.5 and 5 mm. Each
held-out case is re-sliced by a factor of its own spacing, thinner (interpolated linearly between
slices) or thicker (whole groups of slices averaged, as a thicker reconstruction is), its masks
with it (a voxel is inside when at least half of it is), and measured with the fold's model, which
never saw the patient, in 3-D on the re-sliced grid. Trains nothing: it needs the fold models that
`benchmarks/accuracy.py` left in --out.

    python benchmarks/slice_spacing.py --recipes bundled --factors 0.5,1,3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))
sys.path.insert(0, str(REPO / "benchmarks"))

from accuracy import markdown, measure, recipe_or_variant, rows, stored_fold_model, summary  # noqa: E402
from LiverLesionSegLib.checkpoint import load_checkpoint  # noqa: E402
from LiverLesionSegLib.errors import InputError  # noqa: E402
from LiverLesionSegLib.model import choose_device  # noqa: E402
from LiverLesionSegLib.preprocess import average_slice_groups, between_slices  # noqa: E402
from LiverLesionSegLib.volume import Case, Volume  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "liverlesionseg" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "accuracy",
                        help="where benchmarks/accuracy.py left its fold models; the tables are written here")
    parser.add_argument("--recipes", default="bundled")
    parser.add_argument("--folds", default="", help="comma-separated held-out case names (default: all)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds, as benchmarks/accuracy.py's")
    parser.add_argument("--factors", default="0.5,1,3", help="new slice spacing / the case's own; over 1: a whole "
                                                             "number (slices averaged in groups)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--summary", default="slice-spacing")
    args = parser.parse_args()

    from LiverLesionSegLib.io.cases import find_cases, load_case

    device = choose_device(args.device)
    factors = [float(f) for f in args.factors.split(",")]
    cases = {r.name: load_case(r) for r in find_cases([args.data]) if r.name != "HCC_006"}
    held_out = [n for n in cases if not args.folds or n in args.folds.split(",")]
    table = {}
    for row, name, seed in rows(args.recipes.split(","), [int(s) for s in args.seeds.split(",")]):
        config = recipe_or_variant(name)
        config.train.seed = seed
        results: dict[float, list] = {f: [] for f in factors}
        for test in held_out:
            checkpoint = load_checkpoint(fold_model(args.out / row / f"test-{test}", config), device)
            for factor in factors:
                metrics = measure(checkpoint, config.inference, test, resliced(cases[test], factor), device)
                print(f"{row} / {test} slices x{factor:g}: lesion Dice {metrics.lesion_dice:.3f}, "
                      f"liver Dice {metrics.liver_dice:.3f}, false lesion {metrics.fp_lesion_volume_ml:.1f} mL",
                      flush=True)
                results[factor].append(metrics)
        for factor in factors:
            table[f"{row}, slices x{factor:g}"] = summary(results[factor])
    options = "".join(f" --{flag} {value}" for flag, value, default in (
        ("folds", args.folds, ""), ("seeds", args.seeds, "0"), ("summary", args.summary, "slice-spacing"))
        if value != default)
    text = markdown(table, f"python benchmarks/slice_spacing.py --recipes {args.recipes} --factors {args.factors}"
                           f"{options}", "Leave-one-case-out, held-out cases re-sliced")
    print(text)
    (args.out / f"{args.summary}.md").write_text(text)
    (args.out / f"{args.summary}.json").write_text(json.dumps(table, indent=1))
    return 0


def fold_model(folder: Path, config) -> Path:
    """The model benchmarks/accuracy.py trained for this fold with `config`."""
    model = stored_fold_model(folder, config)
    if model is None:
        raise InputError("holds no fold model", str(folder),
                         "run benchmarks/accuracy.py with the same --recipes, --seeds and --out first")
    return model


def resliced(case: Case, factor: float) -> Case:
    """The case with `factor` times its slice spacing: thinner slices interpolated, thicker ones whole
    groups of `factor` slices averaged (the last, incomplete group left out). The CT must be in
    axial order, slices along the array's first axis, as the shared cases are."""
    if factor == 1:
        return case
    masks = {"liver": case.liver.array | case.lesion.array, "lesion": case.lesion.array}
    if factor > 1:
        group = int(round(factor))
        if abs(group - factor) > 1e-6:
            raise SystemExit(f"--factors: {factor} is over 1 and not a whole number of slices")

        def change(a: np.ndarray) -> np.ndarray:
            return average_slice_groups(a, group)
    else:
        below, above, weight = between_slices(np.arange(0, case.ct.shape[0] - 1 + 1e-6, factor), case.ct.shape[0])
        weight = weight[:, None, None]

        def change(a: np.ndarray) -> np.ndarray:
            a = a.astype(np.float32)
            return (1 - weight) * a[below] + weight * a[above]

    ct = case.ct
    # Slices are along the first array axis and the third spacing entry; the first slice's centre moves
    # by half the group when slices are averaged.
    shift = (factor - 1) / 2 * ct.spacing[2] if factor > 1 else 0.0
    origin = tuple(np.asarray(ct.origin) + shift * ct.direction[:, 2])
    grid = Volume(change(ct.array), (ct.spacing[0], ct.spacing[1], ct.spacing[2] * factor), origin, ct.direction,
                  ct.source)
    liver, lesion = ((change(masks[k]) >= 0.5).astype(np.uint8) for k in ("liver", "lesion"))
    return Case(case.name, grid, grid.with_array(liver), grid.with_array(lesion), case.source)


if __name__ == "__main__":
    raise SystemExit(main())
