"""`liverlesionseg segment [INPUT] -o OUT`: segment one CT with the bundled model or a checkpoint."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..errors import OutputError
from ..progress import JsonLinesProgress, Progress, format_timings, timed

log = logging.getLogger("LiverLesionSeg")

SAMPLE_OUTPUT = Path("liverlesionseg-sample.seg.nrrd")
BESIDE = True  # --rtstruct without a file name: beside each result
MANY_FORMATS = ("seg.nrrd", "nii.gz", "nrrd", "mha", "dcm")  # results of several inputs
# command-line option -> the inference setting it overrides (None: the model's own)
OPTIONS = {
    "lesion_threshold": "lesion_threshold", "lesion_grow_threshold": "lesion_grow_threshold",
    "lesion_grow_smoothing": "lesion_grow_smoothing_mm", "lesion_grow_max": "lesion_grow_max_mm",
    "lesion_grow_beyond_liver": "lesion_grow_beyond_liver_mm",
    "min_lesion_peak": "min_lesion_peak_probability",
    "liver_neck": "liver_neck_mm", "liver_edge": "liver_edge_mm",
    "min_liver_around_lesion": "min_liver_around_lesion",
    "min_lesion_hu": "min_lesion_median_hu", "min_lesion_contrast": "min_lesion_contrast_hu",
    "max_lesion_gas": "max_lesion_gas_mm3",
    "batch_size": "batch_size", "precision": "precision",
}


def add_parser(sub, common) -> None:
    p = sub.add_parser("segment", parents=[common], help="segment the liver and its lesions in a CT",
                       description="Segment the liver and liver lesions of one CT, or of several into a folder. Without INPUT, the bundled "
                                   "sample case is segmented and a PNG overlay written beside the output.")
    p.add_argument("input", nargs="*", type=Path,
                   help="a DICOM folder (the axial CT series is chosen), a multi-frame DICOM CT file, a "
                        ".nii/.nii.gz/.nrrd/.mha file, a 3D-IRCADb or CT + DICOM SEG case folder, a 3D Slicer "
                        "scene (.mrb, or .mrml beside its data: its CT volume), or a ZIP or tar archive of one of "
                        "these (default: the bundled sample case); several inputs are segmented one after the other "
                        "into the folder -o names, the model loaded once")
    p.add_argument("-o", "--output", type=Path,
                   help="label map .nii.gz/.nii/.nrrd/.mha (0 background, 1 liver, 2 lesion), Slicer .seg.nrrd, or "
                        ".dcm: a DICOM SEG over the input's DICOM series (for a PACS); with several inputs, a folder "
                        "(with one, an existing folder: FOLDER/NAME.FORMAT, as for several)")
    p.add_argument("--format", choices=MANY_FORMATS,
                   help="with several inputs or an output folder: each result's format, written as "
                        "FOLDER/NAME.FORMAT, NAME from its input (default: seg.nrrd)")
    p.add_argument("--probabilities", type=Path, metavar="FILE", help="also write the lesion probability map")
    p.add_argument("--lesions", type=Path, metavar="CSV|DCM",
                   help="also write the lesion table: .csv, or .dcm for a DICOM SR measurement report over the "
                        "input's DICOM series (TID 1500: each lesion's long axis line, short axis, volume, median "
                        "CT value)")
    add_beside_options(p, "the liver and its lesions", "the input's", "each result (and so with several inputs)")
    p.add_argument("--overlay", type=Path, metavar="PNG",
                   help="also write a PNG of the result on a CT slice (.jpg, .tif, .pdf or .svg by its suffix)")
    p.add_argument("--model", type=Path, metavar="FILE", action="append",
                   help="a checkpoint (default: the bundled model); given several times (three, say, trained "
                        "with other seeds), each model segments the CT and a voxel is liver or lesion where "
                        "most of them say so")
    p.add_argument("--series", help="with several CT series in a folder: its UID, number or description (and "
                                    ":N for acquisition N of a series holding several over the same slices); "
                                    "with several volumes in a Slicer scene: the volume's name (default: the "
                                    "portal venous phase or else the last acquired, a soft-tissue reconstruction, "
                                    "a dual-energy CT's conventional or 70 keV image, by their descriptions and "
                                    "DICOM terms; the log says why)")
    p.add_argument("--lesion-threshold", type=float, help="lesion probability threshold (default: the model's)")
    p.add_argument("--lesion-grow-threshold", type=float, metavar="P",
                   help="a lesion found takes in the voxels connected to it down to this probability "
                        "(default: the model's; 1 turns it off)")
    p.add_argument("--lesion-grow-smoothing", type=float, metavar="MM",
                   help="the probability lesions grow over is smoothed across slices by a Gaussian of MM first "
                        "(default: the model's; 0 turns it off)")
    p.add_argument("--lesion-grow-max", type=float, metavar="MM",
                   help="a lesion grows no farther than MM from what the model is sure of (default: the model's; "
                        "0: no limit)")
    p.add_argument("--lesion-grow-beyond-liver", type=float, metavar="MM",
                   help="a lesion also grows up to MM beyond the liver output, over the part of it that is the "
                        "same tissue as its core (a tumour bulging out of the liver), and that part becomes liver "
                        "(default: the model's; 0 keeps lesions inside the liver output)")
    p.add_argument("--min-lesion-peak", type=float, metavar="P",
                   help="drop lesions whose highest lesion probability is below P: fewer false islands, and "
                        "fewer small true lesions (default: the model's; off for the bundled model)")
    p.add_argument("--liver-neck", type=float, metavar="MM",
                   help="cut off what joins the liver only through a neck thinner than twice MM (default: the "
                        "model's; 0 turns it off)")
    p.add_argument("--liver-edge", type=float, metavar="MM",
                   help="move the liver's edge, within MM of the network's, to where the CT is of the liver's "
                        "density (default: the model's, 2 mm for the bundled model; 0 turns it off)")
    p.add_argument("--min-liver-around-lesion", type=float, metavar="SHARE",
                   help="drop lesions with less than this share of liver around them (default: the model's; "
                        "0 keeps every lesion that touches the liver, for one that bulges out of it)")
    fluid = p.add_mutually_exclusive_group()
    fluid.add_argument("--min-lesion-hu", type=float, metavar="HU",
                       help="drop lesions whose median CT value is below this (default: the model's; 20 HU for "
                            "the bundled model: fluid, such as a cyst or the gallbladder)")
    fluid.add_argument("--keep-fluid-lesions", action="store_true",
                       help="keep lesions of fluid density too (cysts), whatever the model's setting")
    p.add_argument("--min-lesion-contrast", type=float, metavar="HU",
                   help="drop lesions whose median CT value is within HU of both the liver around them and the "
                        "whole liver: the liver's own density, not a lesion; they stay liver (default: the "
                        "model's, 15 HU for the bundled model; 0 keeps them)")
    p.add_argument("--max-lesion-gas", type=float, metavar="MM3",
                   help="drop lesions holding more than MM3 of gas (CT under -400 HU) beneath their surface: the "
                        "stomach or the bowel, and they leave the liver too (default: the model's, 50 for the "
                        "bundled model; a large value keeps them)")
    p.add_argument("--batch-size", type=int, help="slices per batch (lower it when memory is short)")
    p.add_argument("--tta", action="store_true", help="average with the left-right flipped prediction")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                   help="auto (default): bfloat16 where the processor computes it natively, which is about twice "
                        "as fast and moves a few boundary voxels; float32: the exact result")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    if len(args.input) > 1:
        from .segment_many import run_many

        return run_many(args, progress)
    from ..io.write import output_kind
    from ..resources import sample_case_path

    given = args.input[0] if args.input else None
    input_path = given or sample_case_path()
    output = args.output or (SAMPLE_OUTPUT if given is None else None)
    if output is not None and _is_folder(output):  # a folder, as for several inputs: FOLDER/NAME.FORMAT
        output = output / f"{case_name(input_path)}.{args.format or MANY_FORMATS[0]}"
    elif args.format:
        raise OutputError("--format is for several inputs, or an output folder", args.output,
                          "with one input, the output's own suffix gives its format")
    if output is None:
        raise OutputError("no output given", None, "add -o OUT.seg.nrrd or -o OUT.nii.gz")
    overlay = args.overlay or (output.with_name(_stem(output) + ".png") if given is None else None)
    beside = DicomBeside.of(output, args)
    tables = beside.tables(args.lesions)
    outputs = [p for p in (output, args.probabilities, *tables, beside.structures, overlay) if p is not None]
    kind = output_kind(output)
    check_outputs(outputs, [input_path], overlay)

    timings: dict[str, float] = {}
    with find_input(input_path, args.series, dicom_outputs(output, kind, tables, beside.structures),
                    timings) as found:
        device, checkpoints = load_checkpoints(args, progress, timings)
        volume, result, lesions = segment_input(found, args, checkpoints, device, progress, timings)
        with progress.stage("write", timings):
            write_result(output, found.series, volume, result, checkpoints, args.probabilities, tables,
                         (case_name(input_path), lesions), beside.structures, overlay)

    report(output, result, lesions, timings, progress, [p for p in outputs if p != output])
    return 0


def load_checkpoints(args: argparse.Namespace, progress: Progress, timings: dict) -> tuple:
    """The device and the model(s) to segment with, the command line's settings over their own."""
    from ..model import choose_device
    from ..resources import load_model

    device = choose_device(args.device)
    models = args.model or [None]
    with progress.stage("load model", timings):
        checkpoints = [load_model(path, device) for path in models]
    given = [f"--{option.replace('_', '-')} {_shown(getattr(args, option))}" for option in OPTIONS
             if getattr(args, option) is not None]
    for path, checkpoint in zip(models, checkpoints):
        _apply_options(checkpoint.config.inference, args)
        # a setting out of range is most often one the command line gave: name those too
        checkpoint.config.validated(str(path or "bundled model") + (f" with {' '.join(given)}" if given else ""))
    return device, checkpoints


# What each DICOM output is called in messages, and what to write instead where it cannot lie on the input
SEG_OUTPUT = ("a DICOM SEG", "write a .seg.nrrd or .nii.gz instead")
REPORT_OUTPUT = ("a DICOM SR lesion report", "write the lesion table as .csv instead")
STRUCTURES_OUTPUT = ("a DICOM RT structure set", "write a .seg.nrrd or .nii.gz instead")


def add_beside_options(p, contents: str, series: str, beside: str) -> None:
    """`--rtstruct [DCM]` and `--sr`, which `DicomBeside` reads: `contents` what the structure set
    holds, `series` whose DICOM series the objects lie on, `beside` where they go without a name."""
    p.add_argument("--rtstruct", type=Path, metavar="DCM", nargs="?", const=BESIDE,
                   help=f"also write {contents} as a DICOM RT structure set over {series} DICOM series, for "
                        f"radiotherapy and radioembolisation planning systems; without DCM, beside {beside} as "
                        "'NAME RS.dcm'")
    p.add_argument("--sr", action="store_true",
                   help=f"also write the lesions as a DICOM SR measurement report over {series} DICOM series, "
                        f"beside {beside} as 'NAME SR.dcm' (as --lesions REPORT.dcm writes one anywhere)")


@dataclass
class DicomBeside:
    """The DICOM objects `--sr` and a bare `--rtstruct` ask for beside a result: "NAME SR.dcm" and
    "NAME RS.dcm", as Slicer's export names them (None: not asked for)."""

    report: Optional[Path]
    structures: Optional[Path]

    @classmethod
    def of(cls, output: Optional[Path], args: argparse.Namespace) -> "DicomBeside":
        if output is None and (args.sr or args.rtstruct is BESIDE):
            raise OutputError("--sr, and --rtstruct without a file name, write beside the -o output, and none was "
                              "given", None, "add -o OUTPUT, or give --lesions REPORT.dcm and --rtstruct RS.dcm")

        def beside(kind: str) -> Path:
            return output.with_name(f"{_stem(output)} {kind}.dcm")

        return cls(beside("SR") if args.sr else None,
                   beside("RS") if args.rtstruct is BESIDE else args.rtstruct)

    def tables(self, lesions: Optional[Path] = None) -> list[Path]:
        """The lesion tables to write: `lesions` (--lesions, CSV or SR) and the report beside, those asked for."""
        return [path for path in (lesions, self.report) if path is not None]

    @property
    def paths(self) -> list[Path]:
        """The files asked for beside the result."""
        return [path for path in (self.report, self.structures) if path is not None]


def dicom_outputs(output: Optional[Path], kind: Optional[str], tables: Sequence[Path],
                  structures: Optional[Path] = None) -> list[tuple[Path, tuple[str, str]]]:
    """The outputs that must lie on the input's DICOM series (a DICOM SEG, DICOM SRs among the
    lesion `tables`, an RT structure set), each named."""
    from ..io.dicom_export import is_dicom_report  # here: it imports the DICOM writers, slow at start-up

    return ([(output, SEG_OUTPUT)] if kind == "dicom-seg" else []) + \
        [(path, REPORT_OUTPUT) for path in tables if is_dicom_report(path)] + \
        ([(structures, STRUCTURES_OUTPUT)] if structures is not None else [])


def find_input(input_path: Path, series, dicom_outputs: list[tuple[Path, tuple[str, str]]], timings: dict):
    """Where the input's CT lies (`InputCT`), from its headers, before any work; for DICOM outputs
    (SEG, SR), also that the series can carry them."""
    from ..io.cases import find_input_ct
    from ..io.dicomseg_write import check_referenced_uids

    with timed("read", timings):
        found = find_input_ct(input_path, series)
    try:
        for output, (what, instead) in dicom_outputs:
            if found.series is None:
                raise OutputError(f"{what} must lie on a DICOM series, and the input {Path(input_path).name} "
                                  "is not one", output, instead)
            check_referenced_uids(found.series, what, instead)
    except BaseException:
        found.close()
        raise
    return found


def segment_input(found, args: argparse.Namespace, checkpoints: list, device, progress: Progress,
                  timings: dict) -> tuple:
    """Read one input (an `InputCT`) and segment it: (its volume, the Segmentation, its lesion table)."""
    from ..ensemble import check_models_fit, segment_with_models
    from ..lesions import lesion_table

    with progress.stage("read", timings):
        volume = found.read()
    check_models_fit(volume, checkpoints, found.path)
    result = segment_with_models(volume, checkpoints, device, progress)
    timings.update(result.timings)
    return volume, result, lesion_table(result.lesion, volume)


def write_result(output: Path, source, volume, result, checkpoints: list,
                 probabilities: Optional[Path] = None, tables: Sequence[Path] = (),
                 measured: Optional[tuple[str, list]] = None, structures: Optional[Path] = None,
                 overlay: Optional[Path] = None) -> None:
    """The label map, the probability map, the lesion `tables` (CSV or DICOM SR) of `measured`
    (the case's name and its lesions), the RT structure set and the `overlay` picture written
    atomically, together: all or none; the DICOM objects over `source`, the input's DICOM series
    (`io.dicom_export.write_together`)."""
    from ..io.dicom_export import write_together
    from ..plots import plot_overlay

    pictures = [(overlay, lambda path: plot_overlay(volume, result.liver, result.lesion, path))] if overlay else []
    write_together(volume.with_array(result.label_map()), source, [c.path.name for c in checkpoints], output=output,
                   probabilities=(probabilities, result.lesion_probability) if probabilities else None,
                   tables=tables, measured=measured, structures=structures, liver_ml=result.liver_ml,
                   pictures=pictures)


def _shown(value) -> str:
    """An option's value as a user types it (-1, not -1.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _apply_options(config, args: argparse.Namespace) -> None:
    """The command line's inference settings over a model's own."""
    for option, setting in OPTIONS.items():
        if getattr(args, option) is not None:
            setattr(config, setting, getattr(args, option))
    if args.keep_fluid_lesions:
        config.min_lesion_median_hu = None
    config.flip_tta = config.flip_tta or args.tta


def check_outputs(outputs: list[Path], inputs: list[Path], overlay: Optional[Path] = None) -> None:
    """Before any work: `check_distinct`, each output writable, and the overlay's picture format known."""
    from ..io.atomic import check_writable

    check_distinct(outputs, inputs)
    for path in outputs:
        check_writable(path)
    if overlay is not None:
        from ..plots import picture_format

        picture_format(overlay)


def check_distinct(outputs: list[Path], inputs: list[Path]) -> None:
    """No two outputs of one name, and no output over an input."""
    resolved = [p.resolve() for p in outputs]
    for index, full in enumerate(resolved):
        if full in resolved[:index]:
            raise OutputError("two outputs have the same name", outputs[index], "give each output its own file")
    sources = {Path(p).resolve() for p in inputs}
    folders = [source for source in sources if _is_folder(source)]
    for path, full in zip(outputs, resolved):
        if full in sources:
            raise OutputError("the output would overwrite the input", path, "choose another output name")
        # a file inside an input folder may be one of its slices, or a case's image or labels
        if any(full.is_relative_to(folder) for folder in folders) and os.path.lexists(full):
            raise OutputError("the output would overwrite a file of the input folder", path,
                              "choose another output name")


def report(output: Path, result, lesions, timings: dict, progress: Progress, extra: list[Path],
           event: str = "done") -> None:
    """The summary: an `event` (the last one, "done", or "case" for each of several inputs) and, but
    with JSON progress, the lines a user reads."""
    from ..lesions import total_volume_ml, tumour_burden

    liver_ml = result.liver_ml
    lesion_ml = total_volume_ml(lesions)
    burden = tumour_burden(lesions, liver_ml)
    stages = format_timings(timings)
    summary = {"event": event, "output": str(output), "liver_ml": round(liver_ml, 2), "lesions": len(lesions),
               "lesion_ml": round(lesion_ml, 3), "tumour_burden": round(burden, 5), "caveats": result.caveats,
               "timings_s": {k: round(v, 3) for k, v in timings.items()},
               "message": f"{output}: liver {liver_ml:.1f} mL, {len(lesions)} lesion(s), {lesion_ml:.2f} mL in all; "
                          f"{stages}"}
    progress.emit(summary)
    if isinstance(progress, JsonLinesProgress):
        return  # stdout carries only the JSON events
    print(f"Wrote {output}" + "".join(f", {p}" for p in extra))
    print_measurements(liver_ml, lesions)
    print(f"Time: {stages}")


def print_measurements(liver_ml: Optional[float], lesions: list) -> None:
    """The liver's volume (None: not segmented) and the lesion table (the first 20 lesions), as a
    user reads them."""
    from ..lesions import total_volume_ml, tumour_burden

    if liver_ml is None:
        print(f"Liver: not segmented. Lesions: {len(lesions)}, {total_volume_ml(lesions):.2f} mL in all.")
    else:
        print(f"Liver: {liver_ml:.1f} mL. Lesions: {len(lesions)}, {total_volume_ml(lesions):.2f} mL in all, "
              f"{100 * tumour_burden(lesions, liver_ml):.1f} % of the liver.")
    for lesion in lesions[:20]:
        r, a, s = lesion.centroid_ras
        print(f"  lesion {lesion.number}: {lesion.volume_ml:.2f} mL, longest axial diameter "
              f"{lesion.longest_axial_diameter_mm:.1f} mm ({lesion.perpendicular_diameter_mm:.1f} mm across), "
              f"median {lesion.median_hu:.0f} HU, centre RAS ({r:.1f}, {a:.1f}, {s:.1f}) mm")
    if len(lesions) > 20:
        print(f"  ... and {len(lesions) - 20} more (see --lesions)")


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for the file system: told as such where it is read or written
        return False


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".tar.gz", ".tar.bz2", ".tar.xz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def case_name(path: Path) -> str:
    """An input's name: a folder's whole name (3Dircadb1.17, as `evaluate` names the case), a file's
    without its image suffix."""
    path = Path(path)
    if path.is_dir():
        named = path.name not in ("", ".", "..")  # "." or "..": the folder's own name
        return path.name if named else (path.resolve().name or "root")
    return _stem(path)
