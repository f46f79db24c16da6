"""How the bundled model's result moves when the same patients are scanned another way, or their
liver is fatty.

Clinics differ in dose (noise), reconstruction kernel (smooth or sharp), field of view (pixel
size), and scanner calibration and tube voltage (the CT values of the same tissue). Each labelled
shared case is changed in one of these ways at a time, as a scan of that kind would look, and
segmented with the model; the result is measured against the case's reference (on the changed
grid where the pixel size changes) and against the model's result on the unchanged CT, the
consistency the change costs.

    python benchmarks/acquisition.py [--model FILE] [--out benchmarks/results/acquisition]
    python benchmarks/acquisition.py --models-per-case DIR --only fatty   # fold models, unseen patients

The bundled model was trained on these same cases: its figures against the reference are better
than on an unseen patient (see the cross-validated table in the README); read the change from the
"as scanned" row, not the level. The noise is white Gaussian noise smoothed in the slice (CT noise
is correlated between neighbouring pixels) and scaled to the given standard deviation, the same
draw for every run; a sharp kernel is an unsharp mask (edges and noise raised), a smooth one a
Gaussian blur; other pixel sizes are the slices resampled linearly (the masks by nearest
neighbour); a body wider than the field of view keeps the central 65 % of each slice's width and
height (a targeted reconstruction: that square resampled to the whole matrix); a calibration shift
adds a constant to every CT value, a higher enhancement (a lower tube voltage, a later bolus) raises
every voxel between 0 and 300 HU by a share of its value; a fatty liver lowers the reference
liver's voxels, but for its lesions and one voxel around them, by 30 or 50 HU.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LiverLesionSeg"))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from LiverLesionSegLib.checkpoint import Checkpoint, load_checkpoint  # noqa: E402
from LiverLesionSegLib.infer import segment_volume  # noqa: E402
from LiverLesionSegLib.io.cases import find_cases, load_case  # noqa: E402
from LiverLesionSegLib.metrics import dice  # noqa: E402
from LiverLesionSegLib.resources import bundled_model_path, unpacked_cases_dir  # noqa: E402
from LiverLesionSegLib.volume import Case, Volume  # noqa: E402

TUMOUR_FREE = "3Dircadb1.7"
SEED = 20261204


@dataclass(frozen=True)
class Change:
    name: str
    ct: Callable[[Volume], Volume]  # the changed CT (of the case, where `of_the_patient`)
    grid: Callable[[Volume], Volume] = lambda mask: mask  # a mask brought onto the changed CT's grid
    of_the_patient: bool = False  # `ct` takes the whole case: it changes the patient, by the reference masks


def noise(sigma_hu: float) -> Callable[[Volume], Volume]:
    def add(ct: Volume) -> Volume:
        rng = np.random.default_rng(SEED)
        white = rng.standard_normal(ct.shape).astype(np.float32)
        correlated = ndimage.gaussian_filter(white, sigma=(0, 0.7, 0.7))
        correlated *= sigma_hu / correlated.std()
        return ct.with_array(ct.array.astype(np.float32) + correlated)
    return add


def blurred(ct: Volume, sigma_px: float = 1.0) -> np.ndarray:
    return ndimage.gaussian_filter(ct.array.astype(np.float32), sigma=(0, sigma_px, sigma_px))


def sharp(ct: Volume) -> Volume:
    array = ct.array.astype(np.float32)
    return ct.with_array(array + 1.0 * (array - blurred(ct)))


def smooth(ct: Volume) -> Volume:
    return ct.with_array(blurred(ct))


def shifted(hu: float) -> Callable[[Volume], Volume]:
    return lambda ct: ct.with_array(ct.array.astype(np.float32) + hu)


def enhanced(share: float) -> Callable[[Volume], Volume]:
    """Soft tissue and contrast (0 to 300 HU) brighter by `share` of their value; air, fat and bone as they were."""
    def change(ct: Volume) -> Volume:
        array = ct.array.astype(np.float32)
        return ct.with_array(np.where((array > 0) & (array < 300), array * (1 + share), array))
    return change


def pixels(factor: float, order: int) -> Callable[[Volume], Volume]:
    """The slices resampled to pixels `factor` times as large (a wider field of view at the same matrix)."""
    def resample(volume: Volume) -> Volume:
        zoom = (1.0, 1.0 / factor, 1.0 / factor)
        array = ndimage.zoom(volume.array.astype(np.float32 if order else np.uint8), zoom, order=order,
                             grid_mode=True, mode="grid-constant" if order == 0 else "nearest")
        array = array.astype(volume.array.dtype) if order == 0 else array
        scale = np.array(volume.array.shape[1:]) / np.array(array.shape[1:])  # (j, i) as the grid came out
        spacing = (volume.spacing[0] * scale[1], volume.spacing[1] * scale[0], volume.spacing[2])
        # the first pixel's centre moves by half the change of the pixel size, along i and j
        shift = volume.direction @ np.array([(spacing[0] - volume.spacing[0]) / 2,
                                             (spacing[1] - volume.spacing[1]) / 2, 0.0])
        return Volume(array, spacing, tuple(np.asarray(volume.origin) + shift), volume.direction, volume.source)
    return resample


def fatty(drop_hu: float) -> Callable[[Case], Volume]:
    """The liver's parenchyma (the reference liver but for its lesions and a voxel around them) darker by
    `drop_hu`, its lesions as they were: a fatty liver (steatosis, common after chemotherapy), against
    which hypodense lesions lose their contrast and the brighter ones stand out."""
    def change(case: Case) -> Volume:
        lesion = case.lesion.array > 0
        parenchyma = (case.liver.array > 0) & ~ndimage.binary_dilation(lesion)
        array = case.ct.array.astype(np.float32)
        return case.ct.with_array(np.where(parenchyma, array - drop_hu, array))
    return change


def cut(share: float) -> Callable[[Volume], Volume]:
    """The central `share` of each slice's width and height, pixels as they were: a patient wider than the
    field of view, the body cut off at every side."""
    def crop(volume: Volume) -> Volume:
        _, rows, columns = volume.shape
        height, width = int(rows * share), int(columns * share)
        top, left = (rows - height) // 2, (columns - width) // 2
        array = volume.array[:, top:top + height, left:left + width].copy()
        shift = volume.direction @ np.array([left * volume.spacing[0], top * volume.spacing[1], 0.0])
        return Volume(array, volume.spacing, tuple(np.asarray(volume.origin) + shift), volume.direction, volume.source)
    return crop


def targeted(share: float, order: int) -> Callable[[Volume], Volume]:
    """The central `share` of each slice at the whole matrix: a reconstruction targeted on the abdomen's centre."""
    return lambda volume: pixels(share, order)(cut(share)(volume))


CHANGES = [
    Change("as scanned", lambda ct: ct),
    Change("noise 15 HU (lower dose)", noise(15.0)),
    Change("noise 30 HU (low dose)", noise(30.0)),
    Change("sharp kernel", sharp),
    Change("smooth kernel", smooth),
    Change("CT values +10 HU (calibration)", shifted(10.0)),  # water's tolerance is 0 +- 7 HU (ACR)
    Change("CT values -10 HU (calibration)", shifted(-10.0)),
    Change("CT values +20 HU (calibration)", shifted(20.0)),
    Change("CT values -20 HU (calibration)", shifted(-20.0)),
    Change("enhancement +20 % (lower kV)", enhanced(0.2)),
    Change("enhancement -20 % (weaker bolus)", enhanced(-0.2)),
    Change("pixels x0.75 (small field of view)", pixels(0.75, 1), pixels(0.75, 0)),
    Change("pixels x1.33 (large field of view)", pixels(4 / 3, 1), pixels(4 / 3, 0)),
    Change("body cut by the field of view (central 65 %)", cut(0.65), cut(0.65)),
    Change("targeted field of view (central 65 %, whole matrix)", targeted(0.65, 1), targeted(0.65, 0)),
    Change("fatty liver (parenchyma -30 HU)", fatty(30.0), of_the_patient=True),
    Change("fatty liver (parenchyma -50 HU)", fatty(50.0), of_the_patient=True),
]


def measure(case: Case, change: Change, checkpoint, unchanged: Optional[tuple]) -> tuple[dict, tuple]:
    """One case under one change: its measures, and its liver and lesion masks."""
    ct = change.ct(case) if change.of_the_patient else change.ct(case.ct)
    result = segment_volume(ct, checkpoint)
    liver, lesion = result.liver.array > 0, result.lesion.array > 0
    true_liver, true_lesion = change.grid(case.liver).array > 0, change.grid(case.lesion).array > 0
    row = {"case": case.name, "change": change.name,
           "liver_dice": dice(liver, true_liver), "lesion_dice": dice(lesion, true_lesion) if true_lesion.any() else None,
           "lesion_ml": float(lesion.sum()) * ct.voxel_volume_mm3 / 1000.0}
    if unchanged is not None:
        same_liver, same_lesion = (change.grid(case.ct.with_array(mask.astype(np.uint8))).array > 0
                                   for mask in unchanged)
        row["liver_dice_to_unchanged"] = dice(liver, same_liver)
        row["lesion_dice_to_unchanged"] = dice(lesion, same_lesion)
    return row, (liver, lesion)


def summary(rows: list[dict], changes: list[Change]) -> list[dict]:
    table = []
    for change in changes:
        mine = [r for r in rows if r["change"] == change.name]
        lesions = [r["lesion_dice"] for r in mine if r["lesion_dice"] is not None]
        free = [r["lesion_ml"] for r in mine if r["case"] == TUMOUR_FREE]
        table.append({
            "change": change.name,
            "mean liver Dice": np.mean([r["liver_dice"] for r in mine]),
            "mean lesion Dice (cases with lesions)": np.mean(lesions) if lesions else None,
            f"lesion on {TUMOUR_FREE} (mL)": free[0] if free else None,
            "liver Dice to as scanned": np.mean([r.get("liver_dice_to_unchanged", 1.0) for r in mine]),
            # where the reference has lesions: on the tumour-free case a few false voxels make it 0 or 1
            "lesion Dice to as scanned (cases with lesions)": np.mean(
                [r.get("lesion_dice_to_unchanged", 1.0) for r in mine if r["lesion_dice"] is not None]),
        })
    return table


def per_case(rows: list[dict], cases: list[str], changes: list[Change]) -> list[dict]:
    """Per case: lesion Dice to the reference / lesion output in mL / lesion Dice to as scanned."""
    table = []
    for change in changes:
        row = {"change": change.name}
        for case in cases:
            r = next(r for r in rows if r["case"] == case and r["change"] == change.name)
            dice_text = "-" if r["lesion_dice"] is None else f"{r['lesion_dice']:.3f}"
            row[case] = f"{dice_text} / {r['lesion_ml']:.1f} / {r.get('lesion_dice_to_unchanged', 1.0):.2f}"
        table.append(row)
    return table


def markdown(table: list[dict]) -> str:
    columns = list(table[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, (float, np.floating)) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=unpacked_cases_dir())
    add_model_options(parser)
    parser.add_argument("--only", default="", help="only the changes whose name holds this text (and as scanned)")
    parser.add_argument("--out", type=Path, default=None, help="also write acquisition.md and acquisition.json here")
    args = parser.parse_args()
    model_for = model_for_each_case(args.model, args.models_per_case)
    changes = [change for change in CHANGES if change is CHANGES[0] or args.only in change.name]
    rows, names = [], []
    for ref in find_cases([args.data]):
        checkpoint = model_for(ref.name)
        if checkpoint is None:
            continue
        case = load_case(ref)
        names.append(case.name)
        unchanged = None
        for change in changes:
            row, masks = measure(case, change, checkpoint, unchanged)
            unchanged = unchanged or masks
            rows.append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    text = (f"Cases: {', '.join(names)}.\n\n" + markdown(summary(rows, changes)) + "\nPer case: lesion Dice to the "
            "reference / lesion output (mL) / lesion Dice to the result as scanned.\n\n" +
            markdown(per_case(rows, names, changes)))
    write_results(text, rows, args.out, "acquisition")
    return 0


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """`--model FILE` (the bundled model by default) or `--models-per-case DIR`."""
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--models-per-case", type=Path, default=None,
                        help="each case's own model from DIR/test-<case>/model.safetensors (the cross-validation's "
                             "fold models, which did not train on it); cases without one are left out")


def model_for_each_case(model: Optional[Path],
                        models_per_case: Optional[Path]) -> Callable[[str], Optional[Checkpoint]]:
    """The checkpoint to segment the case of a name with: `model` (the bundled one by default) for every case, or
    with `models_per_case` the case's own fold model, None where it has none (the case is left out)."""
    if models_per_case is None:
        shared = load_checkpoint(model or bundled_model_path())
        return lambda name: shared

    def own(name: str) -> Optional[Checkpoint]:
        path = models_per_case / f"test-{name}" / "model.safetensors"
        return load_checkpoint(path) if path.exists() else None
    return own


def write_results(text: str, rows: list[dict], out: Optional[Path], name: str) -> None:
    """Print the table `text`; with `out`, also write it as `name`.md and the `rows` as `name`.json there."""
    print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.md").write_text(text)
        (out / f"{name}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
