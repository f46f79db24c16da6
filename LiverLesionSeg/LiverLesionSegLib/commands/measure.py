"""`liverlesionseg measure CT SEGMENTATION...`: the lesion table of a segmentation made or corrected
elsewhere (ITK-SNAP, Slicer's Segment Editor, another tool's DICOM SEG), measured on its CT as
`segment` measures its own, and that segmentation written on: as a DICOM SEG over the CT's series
(for a PACS; marked as corrected by a reader), or as another label map format.

The command line's twin of the Slicer panel "After correction"."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..progress import JsonLinesProgress, Progress
from .segment import (REPORT_OUTPUT, SEG_OUTPUT, case_name, check_distinct, find_input, is_dicom_report,
                      print_measurements)


def add_parser(sub, common) -> None:
    p = sub.add_parser("measure", parents=[common], help="measure the lesions of a given segmentation of a CT",
                       description="Measure the lesions (volume, longest axial diameter and the width across it, "
                                   "median CT value, centre) and the liver of a segmentation of a CT made or "
                                   "corrected elsewhere, and write it on: as a DICOM SEG with a DICOM SR report "
                                   "over the CT's DICOM series, say. No model is run.")
    p.add_argument("ct", type=Path, help="the CT, as segment reads it: a DICOM folder, a multi-frame DICOM file, a "
                                         ".nii/.nii.gz/.nrrd/.mha file, or a ZIP archive of one of these")
    p.add_argument("segmentation", type=Path, nargs="+",
                   help="its segmentation: a label map on the CT's grid (.nii.gz/.nii/.nrrd/.mha; 0 background, "
                        "1 liver, 2 lesion), a Slicer .seg.nrrd, or a DICOM SEG (.dcm) made on the CT's series by "
                        "any tool (segments labelled as liver and as lesion, tumour, ...); several files are "
                        "united (a liver SEG and a tumour SEG)")
    p.add_argument("--series", help="with several CT series in a folder: its UID, number or description")
    p.add_argument("--lesions", type=Path, metavar="CSV|DCM",
                   help="write the lesion table: .csv, or .dcm for a DICOM SR measurement report over the CT's "
                        "DICOM series (TID 1500)")
    p.add_argument("-o", "--output", type=Path,
                   help="also write the segmentation: .dcm, a DICOM SEG over the CT's DICOM series (its segments "
                        "SEMIAUTOMATIC, the series marked as corrected), or a .nii.gz/.nrrd/.seg.nrrd label map")
    p.add_argument("--overlay", type=Path, metavar="PNG",
                   help="also write a PNG of the segmentation on the CT slice with the most lesion")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..io.atomic import check_writable
    from ..io.cases import read_segmentations
    from ..io.write import output_kind
    from ..lesions import lesion_table, mask_volume_ml

    outputs = [path for path in (args.output, args.lesions, args.overlay) if path is not None]
    if not outputs:
        raise OutputError("no output given", None, "add --lesions TABLE.csv (or REPORT.dcm), -o SEG.dcm, or both")
    kind = output_kind(args.output) if args.output else None
    check_distinct(outputs, [args.ct, *args.segmentation])
    for path in outputs:
        check_writable(path)
    dicom_outputs = ([(args.output, SEG_OUTPUT)] if kind == "dicom-seg" else []) + \
        ([(args.lesions, REPORT_OUTPUT)] if is_dicom_report(args.lesions) else [])
    timings: dict[str, float] = {}
    with find_input(args.ct, args.series, dicom_outputs, timings) as found:
        with progress.stage("read", timings):
            ct = found.read()
            liver, lesion = read_segmentations(args.segmentation, ct)
        lesions = lesion_table(lesion, ct)
        liver_ml = mask_volume_ml(liver)
        labels = liver.with_array(liver.array + lesion.array)  # 0, 1 liver, 2 lesion (the liver holds its lesions)
        with progress.stage("write", timings):
            _write(args, kind, labels, ct, found.series, case_name(args.ct), lesions)
    progress.emit({"event": "done", "outputs": [str(p) for p in outputs], "liver_ml": round(liver_ml, 2),
                   "lesions": len(lesions), "message": f"measured {len(lesions)} lesion(s)"})
    if not isinstance(progress, JsonLinesProgress):
        print("Wrote " + ", ".join(str(p) for p in outputs))
        print_measurements(liver_ml, lesions)
    return 0


def _write(args: argparse.Namespace, kind, labels, ct, series, case: str, lesions: list) -> None:
    """The DICOM outputs together (both or neither), then the others."""
    from ..io.dicom_export import write_dicom_outputs
    from ..io.write import write_segmentation_output
    from ..report import write_lesion_table

    seg = args.output if kind == "dicom-seg" else None
    report = args.lesions if is_dicom_report(args.lesions) else None
    if seg or report:
        given = "segmentation " + ", ".join(path.name for path in args.segmentation)
        write_dicom_outputs(seg, report, labels, ct, series, [given[:64]], corrected=True)
    if args.output and not seg:
        write_segmentation_output(args.output, labels)
    if args.lesions and not report:
        write_lesion_table(args.lesions, {case: lesions})
    if args.overlay:
        from ..plots import plot_overlay

        plot_overlay(ct, labels.with_array((labels.array > 0).astype(np.uint8)),
                     labels.with_array((labels.array == 2).astype(np.uint8)), args.overlay)
