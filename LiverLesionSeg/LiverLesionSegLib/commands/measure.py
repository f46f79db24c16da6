"""`liverlesionseg measure CT SEGMENTATION...`: the lesion table of a segmentation made or corrected
elsewhere (ITK-SNAP, Slicer's Segment Editor, another tool's DICOM SEG), measured on its CT as
`segment` measures its own, and that segmentation written on: as a DICOM SEG over the CT's series
(for a PACS; marked as corrected by a reader), or as another label map format.

The command line's twin of the Slicer panel "After correction"."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import OutputError
from ..progress import JsonLinesProgress, Progress
from .segment import (DicomBeside, add_beside_options, case_name, check_outputs, dicom_outputs, find_input,
                      print_measurements)

log = logging.getLogger("LiverLesionSeg")


def add_parser(sub, common) -> None:
    p = sub.add_parser("measure", parents=[common], help="measure the lesions of a given segmentation of a CT",
                       description="Measure the lesions (volume, longest axial diameter and the width across it, "
                                   "median CT value, centre) and the liver of a segmentation of a CT made or "
                                   "corrected elsewhere, and write it on: as a DICOM SEG with a DICOM SR report "
                                   "over the CT's DICOM series, say. No model is run.")
    p.add_argument("ct", type=Path, help="the CT, as segment reads it: a DICOM folder, a multi-frame DICOM file, a "
                                         ".nii/.nii.gz/.nrrd/.mha file, a 3D Slicer scene (.mrb, .mrml), or a ZIP or "
                                         "tar archive of one of these")
    p.add_argument("segmentation", type=Path, nargs="*",
                   help="its segmentation: a label map on the CT's grid (.nii.gz/.nii/.nrrd/.mha; 0 background, "
                        "1 liver, 2 lesion), a Slicer .seg.nrrd, or a DICOM SEG or RT structure set (.dcm) made on "
                        "the CT's series by any tool (segments or ROIs named as liver and as lesion, tumour, GTV, "
                        "...); several files are "
                        "united (a liver SEG and a tumour SEG); the lesions alone will do (the liver is then "
                        "reported as not segmented); for a 3D Slicer scene, by default its one segmentation, or the "
                        "one named here (e.g. 'Segmentation corrected')")
    p.add_argument("--series", help="with several CT series in a folder: its UID, number or description")
    p.add_argument("--lesions", type=Path, metavar="CSV|DCM",
                   help="write the lesion table: .csv, or .dcm for a DICOM SR measurement report over the CT's "
                        "DICOM series (TID 1500)")
    p.add_argument("-o", "--output", type=Path,
                   help="also write the segmentation: .dcm, a DICOM SEG over the CT's DICOM series (its segments "
                        "SEMIAUTOMATIC, the series marked as corrected), or a .nii.gz/.nrrd/.seg.nrrd label map")
    add_beside_options(p, "the segmentation", "the CT's", "the -o output")
    p.add_argument("--overlay", type=Path, metavar="PNG",
                   help="also write a PNG of the segmentation on the CT slice with the most lesion")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..caveats import measured_caveats
    from ..io.cases import input_exists, read_segmentations
    from ..io.dicom_export import measure_labels, write_together
    from ..plots import plot_overlay
    from ..io.write import output_kind

    beside = DicomBeside.of(args.output, args)
    tables = beside.tables(args.lesions)
    outputs = [path for path in (args.output, *tables, beside.structures, args.overlay) if path is not None]
    if not outputs:
        raise OutputError("no output given", None, "add --lesions TABLE.csv (or REPORT.dcm), -o SEG.dcm, or both")
    kind = output_kind(args.output) if args.output else None
    check_outputs(outputs, [args.ct, *args.segmentation], args.overlay)
    timings: dict[str, float] = {}
    with find_input(args.ct, args.series, dicom_outputs(args.output, kind, tables, beside.structures),
                    timings) as found:
        with progress.stage("read", timings):
            ct = found.read()
            # after a scene, a name that is not a file is one of the scene's segmentations
            segmentations = [found.scene_segmentation(str(path)) if found.scene and not input_exists(path) else path
                             for path in args.segmentation] or [found.scene_segmentation()]
            with found.named_inside():
                liver, lesion = read_segmentations(segmentations, ct, require_liver=False)
        # 0, 1 liver, 2 lesion (the liver holds its lesions); lesions alone: the liver's volume unknown
        labels = lesion.with_array(lesion.array * 2 if liver is None else liver.array + lesion.array)
        lesions, liver_ml = measure_labels(labels, ct, liver is not None)
        for caveat in measured_caveats(lesions, liver_ml, ct):
            log.warning("Caution (%s): %s.", ", ".join(found.shown(path) for path in segmentations), caveat)
        with progress.stage("write", timings):
            given = "segmentation " + ", ".join(path.name for path in segmentations)
            pictures = [(args.overlay, lambda path: plot_overlay(ct, liver, lesion, path))] if args.overlay else []
            write_together(labels, found.series, [given[:64]], output=args.output, liver_ml=liver_ml, corrected=True,
                           tables=tables, measured=(case_name(args.ct), lesions), structures=beside.structures,
                           pictures=pictures)
    progress.emit({"event": "done", "outputs": [str(p) for p in outputs],
                   "liver_ml": None if liver_ml is None else round(liver_ml, 2),
                   "lesions": len(lesions), "message": f"measured {len(lesions)} lesion(s)"})
    if not isinstance(progress, JsonLinesProgress):
        print("Wrote " + ", ".join(str(p) for p in outputs))
        print_measurements(liver_ml, lesions)
    return 0
