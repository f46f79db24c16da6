"""Ablation of the bundled recipe: each of its parts taken out or swapped in turn, trained and
measured on the same leave-one-case-out folds as `benchmarks/accuracy.py`.

The base is the bundled recipe as it was when the ablation was run (`bundled-v1`, with the
notebook's loss); its finding, Dice + BCE, made the second bundled recipe (the `dice-bce` variant).
The liver-relative shift and the masses beside the liver (`dice-bce-liver-relative` and the
`-masses` variants) were measured at full resolution with `benchmarks/accuracy.py`; the one with
masses in 30 % of liver slices is the third bundled recipe as trained (`bundled-v3`, whose clean-up
also drops lesions with little liver around them, measured at full resolution). The `bundled-`
variants are one change to it (`bundled-halo` and `bundled-context-2.5mm` at full resolution, with
its clean-up; the second is today's bundled recipe, which takes the neighbour channels 2.5 mm away),
except `bundled-thick-5mm`, `bundled-mirrored` and `bundled-tiles`, each one change to today's
recipe; `<variant>-seedN` trains a variant with another seed.

It runs on a compact copy of the labelled cases, small enough to travel to a GPU machine and to
finish there in one sitting: the CT stored as its HU window at half the in-plane resolution
(256 x 256, area-averaged, 8 bits: what the network's 128 x 128 input is made from anyway), the
masks at the same resolution (a voxel is inside when at least half of its four voxels are).

    python benchmarks/ablation.py pack cases.npz                 # from the shared cases, here
    python benchmarks/ablation.py run cases.npz --device cuda --jobs 8
    python benchmarks/ablation.py run cases.npz --epochs-scale 0.05 --variants bundled  # a CPU try

Its figures are on that half-resolution grid and rank the parts against each other; the
full-resolution figures of the two recipes are `benchmarks/accuracy.py`'s. Results go to one
JSON line per fold (kept when a run is cut short) and a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

from LiverLesionSegLib.config import Config, LossConfig, PreprocessConfig  # noqa: E402
from LiverLesionSegLib.resources import unpacked_cases_dir  # noqa: E402
from LiverLesionSegLib.volume import Case, Volume, to_axial_lps  # noqa: E402

WINDOW = PreprocessConfig()  # the HU window every recipe uses


def _no_25d(c: Config) -> None:
    c.preprocess.context_slices = 0


def _no_zoom(c: Config) -> None:
    c.preprocess.zoom = False


def _no_oversampling(c: Config) -> None:
    c.train.lesion_oversample = 1.0


def _no_synthetic(c: Config) -> None:
    c.augment.synthetic_lesions = 0.0


def _dice_bce(c: Config) -> None:
    c.loss.tversky_weight, c.loss.bce_pos_weight = 0.0, (1.0, 1.0)


def _short_schedule(c: Config) -> None:
    c.train.cycles, c.train.epochs_per_cycle = 3, 5


def _flips(c: Config) -> None:
    c.augment.flip_lr, c.inference.flip_tta = 0.5, True


def _no_cleanup(c: Config) -> None:
    c.inference.largest_liver_component = c.inference.lesions_inside_liver = False
    c.inference.min_lesion_mm3 = 0.0


def _dice_bce_liver_relative(c: Config) -> None:
    _dice_bce(c)
    c.preprocess.liver_reference_hu = 100.0


def _dice_bce_liver_relative_masses(share: float) -> Callable[[Config], None]:
    def change(c: Config) -> None:
        _dice_bce_liver_relative(c)
        c.augment.masses_beside_liver = share
    return change


def _dice_bce_fewer_synthetic(share: float) -> Callable[[Config], None]:
    def change(c: Config) -> None:
        _dice_bce(c)
        c.augment.synthetic_lesions = share
    return change


def _bundled_v3_as_trained(change: Callable[[Config], None]) -> Callable[[Config], None]:
    """The third bundled recipe as trained (`dice-bce-liver-relative-masses`) with one more change."""
    def apply(c: Config) -> None:
        _dice_bce_liver_relative_masses(0.3)(c)
        change(c)
    return apply


def _longer(c: Config) -> None:
    c.train.cycles = 6


def _five_slices(c: Config) -> None:
    c.preprocess.context_slices = 2


def _more_hyperdense(c: Config) -> None:
    c.augment.synthetic_hyperdense_share = 0.5
    c.augment.synthetic_hyperdense = (0.03, 0.2)


def _bundled(change: Callable[[Config], None]) -> Callable[[Config], None]:
    """Today's `recipes.bundled`, clean-up rules included, with one more change (for
    `benchmarks/accuracy.py`, at full resolution)."""
    def apply(c: Config) -> None:
        from LiverLesionSegLib.recipes import bundled

        whole = bundled()
        for part in dataclasses.fields(whole):
            setattr(c, part.name, getattr(whole, part.name))
        change(c)
    return apply


def _bundled_v3(change: Callable[[Config], None]) -> Callable[[Config], None]:
    """The third bundled recipe, today's with the next slices as neighbours (not the CT 2.5 mm
    away), with one more change."""
    def apply(c: Config) -> None:
        c.preprocess.context_mm = None
        change(c)
    return _bundled(apply)


def _halo(rim: tuple[float, float]) -> Callable[[Config], None]:
    def change(c: Config) -> None:
        c.augment.synthetic_halo_share, c.augment.synthetic_halo_rim = 0.5, rim
    return change


def _context_mm(distance: float) -> Callable[[Config], None]:
    def change(c: Config) -> None:
        c.preprocess.context_mm = distance
    return change


def _thick_slices(thickness_mm: float) -> Callable[[Config], None]:
    def change(c: Config) -> None:
        c.augment.thick_slices_mm = thickness_mm
    return change


def _mirrored(c: Config) -> None:
    c.augment.mirrored_lesions = 0.4
    c.inference.lesion_grow_max_mm = 6.0


def _pasted(c: Config) -> None:
    c.augment.pasted_lesions = 0.3


def _encoder(name: str) -> Callable[[Config], None]:
    def apply(c: Config) -> None:
        c.model.encoder = name
    return apply


def _tiles(c: Config) -> None:
    c.preprocess.zoom_tiles = 2


def _window(hu_min: float, hu_max: float) -> Callable[[Config], None]:
    """The HU window, with the augmentations given in window units rescaled so that they keep their
    size in HU (a synthetic lesion 50 HU darker stays 50 HU darker)."""
    def change(c: Config) -> None:
        old_min, old_width = c.preprocess.hu_min, c.preprocess.hu_max - c.preprocess.hu_min
        scale = old_width / (hu_max - hu_min)
        a = c.augment
        a.synthetic_hypodense = tuple(v * scale for v in a.synthetic_hypodense)
        a.synthetic_hyperdense = tuple(v * scale for v in a.synthetic_hyperdense)
        a.brightness, a.noise = a.brightness * scale, a.noise * scale
        a.enhancement_floor *= scale
        a.fatty_liver_drop *= scale
        a.mass_density = tuple((old_min + v * old_width - hu_min) / (hu_max - hu_min) for v in a.mass_density)
        c.preprocess.hu_min, c.preprocess.hu_max = hu_min, hu_max
    return change


def _enhancement(share: float) -> Callable[[Config], None]:
    def change(c: Config) -> None:
        c.augment.liver_enhancement = share
    return change


def _fatty(c: Config) -> None:
    c.augment.fatty_liver = 0.3


def _lesion_threshold(threshold: float) -> Callable[[Config], None]:
    def change(c: Config) -> None:
        c.inference.lesion_threshold = threshold
    return change


# name -> (what changes, the change); most telling first. The first rows are each one change to
# bundled-v1; the `bundled-` rows are one change to the third bundled recipe.
TRAINED: dict[str, tuple[str, Callable[[Config], None]]] = {
    "bundled-v1": ("the bundled recipe as it was, with the notebook's loss", lambda c: None),
    "no-zoom": ("whole slices only, no second pass over the liver's box", _no_zoom),
    "no-2.5d": ("one slice in, no neighbours as channels", _no_25d),
    "no-synthetic": ("no synthetic lesions painted into the liver", _no_synthetic),
    "no-oversampling": ("lesion slices drawn as often as the others", _no_oversampling),
    "dice-bce": ("Dice + BCE (unweighted) instead of BCE with weighted positives + Dice + Tversky (the "
                 "second bundled recipe)", _dice_bce),
    "short-schedule": ("the notebook's 3 cycles of 5 epochs instead of 4 of 8", _short_schedule),
    "flips": ("left-right flips in training and as test-time augmentation", _flips),
    "dice-bce-synthetic-0.3": ("Dice + BCE, synthetic lesions in 30 % of liver slices instead of 60 %",
                               _dice_bce_fewer_synthetic(0.3)),
    "dice-bce-synthetic-0.15": ("Dice + BCE, synthetic lesions in 15 % of liver slices",
                                _dice_bce_fewer_synthetic(0.15)),
    "dice-bce-liver-relative": ("Dice + BCE, the liver's box shifted in HU to put the liver's median at 100 HU",
                                _dice_bce_liver_relative),
    "dice-bce-liver-relative-masses": (
        "the same, with unmarked masses painted beside the liver in 30 % of liver slices (the third bundled recipe, "
        "measured without its rule on the liver around a lesion)",
        _dice_bce_liver_relative_masses(0.3)),
    "dice-bce-liver-relative-masses-0.6": ("the same, masses in 60 % of liver slices",
                                           _dice_bce_liver_relative_masses(0.6)),
    "bundled-longer": ("the third bundled recipe, 6 cycles of 8 epochs instead of 4", _bundled_v3_as_trained(_longer)),
    "bundled-5-slices": ("the third bundled recipe, two neighbours on each side as channels instead of one",
                         _bundled_v3_as_trained(_five_slices)),
    "bundled-hyperdense": ("the third bundled recipe, half the synthetic lesions brighter than the liver (not "
                           "30 %), from 10 HU brighter (not 17)", _bundled_v3_as_trained(_more_hyperdense)),
    "bundled-v3": ("the third bundled recipe: today's with the next slices as neighbours, however far apart",
                   _bundled_v3(lambda c: None)),
    "bundled-halo": ("bundled-v3, half the synthetic lesions drawn with a halo (a rim of less contrast, or of "
                     "the opposite: an enhancing rim)", _bundled_v3(_halo((-0.5, 0.6)))),
    "bundled-context-2.5mm": ("bundled-v3, the neighbour channels the CT 2.5 mm away (interpolated), not the "
                              "next slices (today's bundled recipe)", _bundled_v3(_context_mm(2.5))),
    "bundled-thick-5mm": ("today's bundled recipe, each training case also seen as a 5 mm reconstruction (its "
                          "slices averaged in groups)", _bundled(_thick_slices(5.0))),
    "bundled-mirrored": ("today's bundled recipe, the real lesions also shown at the opposite contrast in 40 % of "
                         "the slices that hold one (mirrored about the liver's median), and lesions grown no "
                         "farther than 6 mm from their core", _bundled(_mirrored)),
    "bundled-tiles": ("today's bundled recipe with a third look at the liver: its box cut into 2 x 2 overlapping "
                      "tiles of 60 % of its side, each at 128 x 128 (pixels 1.7 times finer)", _bundled(_tiles)),
    "bundled-narrow-window": ("today's bundled recipe with the HU window -20 to 200 (about nnU-Net's clipping on "
                              "liver CT) instead of -100 to 250, the augmentations given in window units rescaled to "
                              "keep their size in HU", _bundled(_window(-20.0, 200.0))),
    "bundled-enhancement": ("today's bundled recipe, each slice with liver trained as if enhanced by up to 25 % "
                            "more or less about the liver's median (another bolus, delay or tube voltage)",
                            _bundled(_enhancement(0.25))),
    "bundled-fatty": ("today's bundled recipe, 30 % of the slices with liver trained as if the liver were fatty: "
                      "its parenchyma up to 50 HU darker than its lesions and all around it (then shifted back "
                      "to its median)", _bundled(_fatty)),
    "bundled-pasted": ("today's bundled recipe, a real lesion of another slice in the batch copied into 30 % of "
                       "the slices with liver (its contrast to its own liver kept, flipped, anywhere in the liver: "
                       "TumorCP)", _bundled(_pasted)),
    "bundled-mobilenet": ("today's bundled recipe with a MobileNetV2 encoder (6.6 M parameters in all, against "
                          "14.3 M with ResNet18)", _bundled(_encoder("mobilenet_v2"))),
}
# name -> (what changes, the trained variant whose models are measured, the change to its inference)
INFERENCE_ONLY: dict[str, tuple[str, str, Callable[[Config], None]]] = {
    "no-cleanup": ("the bundled-v1 models without clean-up (largest liver, lesions in it, no specks)", "bundled-v1",
                   _no_cleanup),
    "bundled-threshold-0.7": ("the third bundled recipe's models, a lesion where its probability is 0.7 or more, "
                              "not 0.5", "dice-bce-liver-relative-masses", _lesion_threshold(0.7)),
}
SEED = re.compile(r"(?P<variant>.+)-seed(?P<seed>[0-9]+)$")


def split_seed(name: str) -> tuple[str, int]:
    """'<variant>-seedN' -> (variant, N); a name without the suffix is seed 0."""
    match = SEED.fullmatch(name)
    return (match["variant"], int(match["seed"])) if match else (name, 0)


def base_recipe() -> Config:
    """bundled-v1: the first bundled recipe, today's without the liver shift, the masses beside the
    liver and the clean-up rules on the liver around a lesion, on fluid density and on gas, the next
    slices as neighbours, with the notebook's loss, BCE with weighted positives + Dice + Tversky (the
    configuration's defaults)."""
    from LiverLesionSegLib.recipes import bundled

    config = bundled()
    config.loss = LossConfig()
    config.preprocess.liver_reference_hu = None
    config.preprocess.context_mm = None
    config.augment.masses_beside_liver = 0.0
    config.inference.min_liver_around_lesion = 0.0
    config.inference.min_lesion_median_hu = None
    config.inference.max_lesion_gas_mm3 = None
    config.inference.dropped_lesions_leave_liver = False
    return config


def variant_config(name: str) -> Config:
    """The configuration of a variant, of an inference-only one, or of either with a '-seedN' suffix."""
    name, seed = split_seed(name)
    config = base_recipe()
    if name in INFERENCE_ONLY:
        _, trained, change = INFERENCE_ONLY[name]
        TRAINED[trained][1](config)
    else:
        change = TRAINED[name][1]
    change(config)
    config.train.seed = seed
    return config


# ---- the compact copy of the cases ----

def pack(data: Path, out: Path) -> None:
    from LiverLesionSegLib.io.atomic import atomic_write_bytes
    from LiverLesionSegLib.io.cases import find_cases, load_case
    from LiverLesionSegLib.preprocess import window

    arrays = {}
    for ref in find_cases([data]):
        case = load_case(ref)
        if not case.labelled:
            continue
        ct, reorientation = to_axial_lps(case.ct)
        lesion = reorientation.apply(case.lesion.array) > 0
        liver = (reorientation.apply(case.liver.array) > 0) | lesion
        arrays[f"{case.name}/ct"] = np.round(_half(window(ct.array, WINDOW)) * 255).astype(np.uint8)
        arrays[f"{case.name}/liver"] = np.packbits(_half(liver) >= 0.5, axis=-1)
        arrays[f"{case.name}/lesion"] = np.packbits(_half(lesion) >= 0.5, axis=-1)
        arrays[f"{case.name}/spacing"] = np.array([ct.spacing[0] * 2, ct.spacing[1] * 2, ct.spacing[2]])
        print(f"packed {case.name}: {ct.shape[0]} slices", flush=True)
    import io
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(out, buffer.getvalue())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def _half(array: np.ndarray) -> np.ndarray:
    """[k, j, i] -> [k, j/2, i/2], each voxel the mean of its 2 x 2 (an odd last row or column is dropped)."""
    k, rows, cols = array.shape
    a = np.asarray(array[:, :rows // 2 * 2, :cols // 2 * 2], np.float32)
    return a.reshape(k, rows // 2, 2, cols // 2, 2).mean(axis=(2, 4))


def unpack(path: Path) -> dict[str, Case]:
    """The packed cases, the CT back in HU (inside the window, which is all the network sees; a
    liver-relative shift then lifts the window's floor too: air reads as fat, as little as that matters)."""
    cases = {}
    with np.load(path) as packed:
        for name in sorted({key.split("/")[0] for key in packed.files}):
            unit = packed[f"{name}/ct"].astype(np.float32) / 255
            hu = WINDOW.hu_min + unit * (WINDOW.hu_max - WINDOW.hu_min)
            spacing = tuple(packed[f"{name}/spacing"])
            width = unit.shape[-1]
            masks = [np.unpackbits(packed[f"{name}/{m}"], axis=-1, count=width).astype(np.uint8)
                     for m in ("liver", "lesion")]
            ct, liver, lesion = (Volume(a, spacing, (0.0, 0.0, 0.0), source=f"{path}:{name}") for a in [hu] + masks)
            cases[name] = Case(name, ct, liver, lesion)
    return cases


# ---- training and measuring one fold ----

def run_fold(variant: str, test: str, data: Path, out: Path, device_name: str, epochs_scale: float,
             threads: int) -> list[dict]:
    import torch

    from LiverLesionSegLib.checkpoint import load_checkpoint
    from LiverLesionSegLib.dataset import prepare_training_case
    from LiverLesionSegLib.infer import segment_volume
    from LiverLesionSegLib.metrics import evaluate_case
    from LiverLesionSegLib.model import choose_device
    from LiverLesionSegLib.train import train

    torch.set_num_threads(threads)
    device = choose_device(device_name)
    cases = unpack(data)
    config = variant_config(variant)
    config.train.epochs_per_cycle = max(1, round(config.train.epochs_per_cycle * epochs_scale))
    folder = out / variant / f"test-{test}"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train([prepare_training_case(c, config) for n, c in cases.items() if n != test], [], config, folder, device,
          download_weights=False)
    trained_s = time.perf_counter() - started
    checkpoint = load_checkpoint(folder / "model.safetensors", device)
    case = cases[test]
    trained = split_seed(variant)[0]
    suffix = variant[len(trained):]
    measured = [(variant, config.inference)] + [(name + suffix, variant_config(name).inference)
                                                for name, (_, base, _) in INFERENCE_ONLY.items() if base == trained]
    records = []
    for name, inference in measured:
        result = segment_volume(case.ct, checkpoint, inference, device)
        metrics = evaluate_case(test, result.liver.array, result.lesion.array, case.liver.array, case.lesion.array,
                                case.ct.spacing)
        records.append({"variant": name, "test": test, "train_s": round(trained_s, 1), "metrics": metrics.to_dict()})
    return records


def _table_order(name: str) -> tuple[int, int]:
    """Variants in the order they are listed, each variant's seeds after it."""
    variant, seed = split_seed(name)
    listed = list(TRAINED) + list(INFERENCE_ONLY)
    return (listed.index(variant) if variant in listed else len(listed), seed)


def run(args) -> int:
    from accuracy import markdown, summary

    from LiverLesionSegLib.metrics import CaseMetrics

    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "ablation-folds.jsonl"
    done = {}
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            record = json.loads(line)
            done[(record["variant"], record["test"])] = record
    with np.load(args.data) as packed:
        names = sorted({key.split("/")[0] for key in packed.files})
    folds = [n for n in names if not args.folds or n in args.folds.split(",")]
    variants = [v for v in args.variants.split(",") if split_seed(v)[0] in TRAINED]
    tasks = [(v, t) for v in variants for t in folds if (v, t) not in done]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool, results_file.open("a") as sink:
        futures = {pool.submit(run_fold, v, t, args.data, args.out, args.device, args.epochs_scale, args.threads):
                   (v, t) for v, t in tasks}
        for future in as_completed(futures):
            for record in future.result():
                done[(record["variant"], record["test"])] = record
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                m = record["metrics"]
                print(f"{record['variant']} / {record['test']}: lesion Dice {m['lesion_dice']:.3f}, liver Dice "
                      f"{m['liver_dice']:.3f}, false lesion {m['fp_lesion_volume_ml']:.1f} mL, trained in "
                      f"{record['train_s']:.0f} s ({time.perf_counter() - started:.0f} s so far)", flush=True)
    table = {}
    for name in sorted({key[0] for key in done}, key=_table_order):
        results = [CaseMetrics(**done[(name, t)]["metrics"]) for t in folds if (name, t) in done]
        table[name] = summary(results)
    scale = f" --epochs-scale {args.epochs_scale}" if args.epochs_scale != 1 else ""
    text = markdown(table, f"python benchmarks/ablation.py run CASES.npz --device {args.device}{scale}",
                    "Leave-one-case-out on the half-resolution copy (`ablation.py pack`)")
    described = {split_seed(name)[0] for name in table}
    text += "\n" + "\n".join(f"- `{name}`: {entry[0]}" for name, entry in (TRAINED | INFERENCE_ONLY).items()
                             if name in described) + "\n"
    text += "- `<variant>-seedN`: the same, trained with seed N (seed 0 otherwise)\n"
    print(text)
    (args.out / "ablation.md").write_text(text)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="write the compact copy of the labelled cases")
    packing.add_argument("out", type=Path)
    packing.add_argument("--data", type=Path, default=unpacked_cases_dir())
    running = commands.add_parser("run", help="train and measure every variant on every fold")
    running.add_argument("data", type=Path)
    running.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ablation")
    running.add_argument("--variants", default=",".join(TRAINED))
    running.add_argument("--folds", default="", help="comma-separated held-out case names (default: all)")
    running.add_argument("--device", default="auto")
    running.add_argument("--jobs", type=int, default=1, help="folds trained at once")
    running.add_argument("--threads", type=int, default=2, help="CPU threads per fold")
    running.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every epochs per cycle")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.data, args.out)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
